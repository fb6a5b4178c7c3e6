/// The text of `tests/fixtures/<name>`, compiled in.
macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/", $name))
    };
}

pub mod arbitrary;
pub mod fake_dropbox;
pub mod fake_oidc;
pub mod fake_openai;
pub mod fake_orchestrator;
pub mod fake_server;
pub mod fake_sqs;
pub mod fake_telegram;
pub mod faults;
pub mod harness;
pub mod images;
pub mod lambda;
pub mod local_orchestrator;
pub mod log_capture;
pub mod moto;
pub mod rate_limit;
pub mod smtp;
pub mod sqs;
pub mod tables;
