//! `publish`: in Lambda, the handler behind `lambda_runtime`; elsewhere one
//! event read from the file named as the first argument (or from stdin),
//! its answer printed on stdout: as JSON, or with `--preview` first, as a
//! preview that changes nothing, in the words of `preview_text.yaml`.
//! `--check-static` only reads the settings and the static configuration.

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use publisher::app::App;
use publisher::settings::Settings;
use publisher::workflow::Summary;
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
    // An operator's check of a static configuration directory: the settings
    // above read it as every function will, and refused it with the file,
    // line and key if it were wrong.
    if std::env::args().nth(1).as_deref() == Some("--check-static") {
        let source = settings.statics.dir.as_ref().map_or_else(
            || "the built-in defaults (PV2_STATIC_CONFIG_DIR is unset)".to_string(),
            |dir| dir.display().to_string(),
        );
        let languages: Vec<&str> = settings
            .statics
            .ui_text
            .keys()
            .map(String::as_str)
            .collect();
        println!(
            "static configuration OK: {source}; page languages: {}",
            languages.join(", ")
        );
        return ExitCode::SUCCESS;
    }
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
    if in_lambda {
        let served = lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
            let app = app.clone();
            async move {
                let deadline = event.context.deadline();
                let request_id = event.context.request_id.clone();
                publish::handle(&app, event.payload, Some(deadline), &request_id)
                    .await
                    .map_err(lambda_runtime::Error::from)
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
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let readable = args.first().is_some_and(|a| a == "--preview");
    if readable {
        args.remove(0);
    }
    let mut text = String::new();
    let read = match args.first() {
        Some(path) => std::fs::read_to_string(path).map(|t| text = t),
        None => std::io::stdin().read_to_string(&mut text).map(|_| ()),
    };
    if let Err(error) = read {
        eprintln!("publish: cannot read the event: {error}");
        return ExitCode::FAILURE;
    }
    let mut event: Value = match serde_json::from_str(&text) {
        Ok(event) => event,
        Err(error) => {
            eprintln!("publish: the event is not JSON: {error}");
            return ExitCode::FAILURE;
        }
    };
    if readable {
        publish::preview_text::force_preview(&mut event);
    }
    let request_id = uuid::Uuid::new_v4().to_string();
    match publish::handle(app, event, None, &request_id).await {
        Ok(answer) if readable => {
            let summaries: Vec<Summary> =
                serde_json::from_value(answer["results"].clone()).unwrap_or_default();
            let settings = &app.settings;
            let text = publish::preview_text::render(
                &summaries,
                &settings.statics,
                settings.ai_rate_per_minute,
            );
            print!("{text}");
            ExitCode::SUCCESS
        }
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
