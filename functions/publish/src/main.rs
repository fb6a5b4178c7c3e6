//! `publish`: in Lambda, the handler behind `lambda_runtime`; elsewhere one
//! event read from the file named as the first argument (or from stdin),
//! its answer printed on stdout.

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use publisher::app::App;
use publisher::metrics::{self, Sink};
use publisher::settings::Settings;
use serde_json::Value;

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("publish: cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    let in_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    // A local run prints its answer on stdout: its logs go to stderr.
    if in_lambda {
        publisher::telemetry::init(settings.log_format_json);
    } else {
        publisher::telemetry::init_with(settings.log_format_json, std::io::stderr);
    }
    let app = match App::start(settings).await {
        Ok(app) => Arc::new(app),
        Err(error) => {
            tracing::error!(%error, "publish: cannot start");
            return ExitCode::FAILURE;
        }
    };
    let sink = if in_lambda { Sink::Stdout } else { Sink::Log };
    metrics::install(&app.settings.metrics_namespace, "publish", sink);
    if in_lambda {
        let served = lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
            let app = app.clone();
            async move {
                let deadline = event.context.deadline();
                let request_id = event.context.request_id.clone();
                let answer = publish::handle(&app, event.payload, Some(deadline), &request_id)
                    .await
                    .map_err(lambda_runtime::Error::from);
                metrics::flush(&request_id);
                answer
            }
        }))
        .await;
        return match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(%error, "publish stopped");
                ExitCode::FAILURE
            }
        };
    }
    run_once(&app).await
}

/// A local run: one event, one answer.
async fn run_once(app: &App) -> ExitCode {
    let mut text = String::new();
    let read = match std::env::args().nth(1) {
        Some(path) => std::fs::read_to_string(path).map(|t| text = t),
        None => std::io::stdin().read_to_string(&mut text).map(|_| ()),
    };
    if let Err(error) = read {
        eprintln!("publish: cannot read the event: {error}");
        return ExitCode::FAILURE;
    }
    let event: Value = match serde_json::from_str(&text) {
        Ok(event) => event,
        Err(error) => {
            eprintln!("publish: the event is not JSON: {error}");
            return ExitCode::FAILURE;
        }
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let answer = publish::handle(app, event, None, &request_id).await;
    metrics::flush(&request_id);
    match answer {
        Ok(answer) => {
            println!("{answer:#}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("publish: {error}");
            ExitCode::FAILURE
        }
    }
}
