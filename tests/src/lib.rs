pub mod fake_orchestrator;
pub mod harness;
pub mod moto;
