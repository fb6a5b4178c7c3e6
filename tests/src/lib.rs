pub mod fake_orchestrator;
pub mod harness;
