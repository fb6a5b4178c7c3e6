//! `warmup`: the scheduled refresh-ahead of every tenant's runtime config,
//! and the consumer of its queue, run by `lambda_runtime`.

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
            eprintln!("warmup: cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    publisher::telemetry::init(settings.log_format_json);
    let app = match App::start(settings).await {
        Ok(app) => Arc::new(app),
        Err(error) => {
            tracing::error!(%error, "warmup: cannot start");
            return ExitCode::FAILURE;
        }
    };
    let sink = match std::env::var_os("AWS_LAMBDA_RUNTIME_API") {
        Some(_) => Sink::Stdout,
        None => Sink::Log,
    };
    metrics::install(&app.settings.metrics_namespace, "warmup", sink);
    let queue = match &app.settings.warmup.queue_url {
        Some(url) => Some(Arc::new(warmup::Queue::connect(url).await)),
        None => None,
    };
    let handler = service_fn(move |event: LambdaEvent<Value>| {
        let (app, queue) = (app.clone(), queue.clone());
        async move {
            let context = event.context;
            let answer = warmup::handle_event(
                &app,
                queue.as_deref(),
                &event.payload,
                &context.request_id,
                Some(context.deadline()),
            )
            .await
            .map_err(|error| {
                tracing::error!(request_id = %context.request_id, %error, "warmup refused its event");
                lambda_runtime::Error::from(error)
            });
            metrics::flush(&context.request_id);
            answer
        }
    });
    match lambda_runtime::run(handler).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "warmup stopped");
            ExitCode::FAILURE
        }
    }
}
