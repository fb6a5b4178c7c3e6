//! Publisher's shared library: everything the `web`, `publish` and `warmup`
//! functions have in common, with no Lambda types.

pub mod config;
pub mod secrets;
pub mod host;
pub mod settings;
pub mod cache;
pub mod orchestrator;
pub mod source;
pub mod telemetry;
pub mod app;
pub mod tenant;
