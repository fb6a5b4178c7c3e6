//! `local-table`: creates the functions' DynamoDB table, as `template.yaml`
//! declares it, on a local DynamoDB API (moto's server, which `make
//! run-tenants TABLE=1` starts). See `--help`.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Arg, Command};
use publisher_tests::moto::{answers, create_table, table_at};

fn command() -> Command {
    Command::new("local-table")
        .about("Creates the functions' DynamoDB table on a local DynamoDB API (moto's server).")
        .long_about(
            "Waits up to 30 s for moto's server at --endpoint to answer, then creates the \
             table --table as template.yaml declares it (pk and sk strings, on demand, TTL on \
             expires_at), with dummy credentials. For local runs only.",
        )
        .arg(
            Arg::new("endpoint")
                .long("endpoint")
                .value_name("URL")
                .required(true)
                .help("The DynamoDB API, e.g. http://127.0.0.1:8101"),
        )
        .arg(
            Arg::new("table")
                .long("table")
                .value_name("NAME")
                .required(true)
                .help("The table's name (the functions' PUBLISHER_TABLE)"),
        )
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = command().get_matches();
    let (Some(endpoint), Some(name)) = (
        args.get_one::<String>("endpoint"),
        args.get_one::<String>("table"),
    ) else {
        // clap enforces both.
        return ExitCode::FAILURE;
    };
    if !answers(endpoint, Duration::from_secs(30)).await {
        eprintln!("local-table: nothing answers at {endpoint}");
        return ExitCode::FAILURE;
    }
    match create_table(&table_at(endpoint, name)).await {
        Ok(()) => {
            eprintln!("local-table: table {name} ready at {endpoint}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("local-table: {name} at {endpoint}: {error}");
            ExitCode::FAILURE
        }
    }
}
