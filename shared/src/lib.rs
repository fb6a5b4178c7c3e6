//! Publisher's shared library: everything the `web`, `publish` and `warmup`
//! functions have in common, with no Lambda types.

pub mod ai;
pub mod app;
pub mod cache;
pub mod config;
pub mod dynamo;
pub mod host;
pub mod orchestrator;
pub mod publishers;
pub mod secrets;
pub mod settings;
pub mod sidecar;
pub mod source;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod tenant;
pub mod workflow;
