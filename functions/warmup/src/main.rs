//! `warmup`: the scheduled refresh-ahead of every tenant's runtime config,
//! run by `lambda_runtime`.

use std::process::ExitCode;
use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use publisher::app::App;
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
    let handler = service_fn(move |event: LambdaEvent<Value>| {
        let app = app.clone();
        async move {
            let context = event.context;
            warmup::handle(
                &app,
                &event.payload,
                &context.request_id,
                Some(context.deadline()),
            )
            .await
            .map_err(|error| {
                tracing::error!(request_id = %context.request_id, %error, "warmup refused its event");
                lambda_runtime::Error::from(error)
            })
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
