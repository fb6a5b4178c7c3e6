//! `local-orchestrator`: the orchestrator contract served from tenant files,
//! for trying the multi-tenant mode locally (`make run-tenants`). See
//! `--help` and `docs/development.md`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{value_parser, Arg, Command};
use publisher_tests::local_orchestrator::{LocalOrchestrator, Options, LOG_TARGET};
use secrecy::SecretString;

fn command() -> Command {
    Command::new("local-orchestrator")
        .about(
            "Serves the orchestrator contract from tenant files, for local runs of the functions.",
        )
        .long_about(
            "Serves the orchestrator contract (POST and GET /v1/runtime/by-host, \
             POST /v1/credentials/resolve, bearer service tokens, 404 for anything unknown) \
             from the <tenant>.json files of a folder, read again before every request: \
             an edit shows at the next lookup. Logs one line per request, naming the host \
             or the credential reference and which token was presented, never a token \
             or a secret. For local runs only: it is not an orchestrator to deploy.",
        )
        .arg(
            Arg::new("listen")
                .long("listen")
                .value_name("ADDRESS:PORT")
                .value_parser(value_parser!(SocketAddr))
                .default_value("127.0.0.1:8100")
                .help("Where to listen"),
        )
        .arg(
            Arg::new("tenants")
                .long("tenants")
                .value_name("DIR")
                .value_parser(value_parser!(PathBuf))
                .default_value("samples/tenants")
                .help("The folder of <tenant>.json files (format: samples/tenants/README.md)"),
        )
        .arg(
            Arg::new("token")
                .long("token")
                .value_name("TOKEN")
                .env("ORCHESTRATOR_SERVICE_TOKEN")
                .hide_env_values(true)
                .required(true)
                .help("The service token callers must present, as the functions read it"),
        )
        .arg(
            Arg::new("secondary-token")
                .long("secondary-token")
                .value_name("TOKEN")
                .env("ORCHESTRATOR_SERVICE_TOKEN_SECONDARY")
                .hide_env_values(true)
                .help("A second accepted token, to try a token rotation"),
        )
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = command().get_matches();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let secret = |name: &str| {
        args.get_one::<String>(name)
            .map(|t| SecretString::from(t.clone()))
    };
    let (Some(listen), Some(tenants), Some(token)) = (
        args.get_one::<SocketAddr>("listen").copied(),
        args.get_one::<PathBuf>("tenants").cloned(),
        secret("token"),
    ) else {
        // clap enforces the defaults and the required token.
        return ExitCode::FAILURE;
    };
    let options = Options {
        listen,
        tenants: tenants.clone(),
        token,
        secondary_token: secret("secondary-token"),
    };
    let orchestrator = match LocalOrchestrator::start(options).await {
        Ok(orchestrator) => orchestrator,
        Err(error) => {
            eprintln!("local-orchestrator: cannot listen on {listen}: {error}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(target: LOG_TARGET, "local orchestrator on {}, serving {}",
        orchestrator.url(),
        tenants.display()
    );
    stopped().await;
    orchestrator.shutdown_and_wait().await;
    tracing::info!(target: LOG_TARGET, "local orchestrator stopped");
    ExitCode::SUCCESS
}

/// Ctrl-C, or SIGTERM (`make orchestrator-stop`).
async fn stopped() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
