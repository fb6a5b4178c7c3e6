//! `web`: in Lambda, served by `lambda_http`; elsewhere on `127.0.0.1:$PORT`.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;

use publisher::app::App;
use publisher::metrics::{self, Sink};
use publisher::settings::Settings;

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("web: cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    publisher::telemetry::init(settings.log_format_json);
    let app = match App::start(settings).await {
        Ok(app) => app,
        Err(error) => {
            tracing::error!(%error, "web: cannot start");
            return ExitCode::FAILURE;
        }
    };
    let port = app.settings.web.port;
    let in_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    let sink = if in_lambda { Sink::Stdout } else { Sink::Log };
    metrics::install(&app.settings.metrics_namespace, "web", sink);
    let router = web::router(Arc::new(app));
    let served = if in_lambda {
        lambda_http::run(router).await
    } else {
        serve_locally(router, port).await.map_err(Into::into)
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "web stopped");
            ExitCode::FAILURE
        }
    }
}

async fn serve_locally(router: axum::Router, port: u16) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
    tracing::info!(address = %listener.local_addr()?, "web listening");
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}
