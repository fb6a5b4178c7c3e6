//! Publisher's shared library: everything the `web`, `publish` and `warmup`
//! functions have in common, with no Lambda types.

pub mod ai;
pub mod app;
pub mod bounded;
pub mod cache;
pub mod clock;
pub mod config;
pub mod failures;
pub mod host;
pub mod image_bounds;
pub mod ledger;
pub mod metrics;
pub mod orchestrator;
pub mod publishers;
pub mod retry;
pub mod secrets;
pub mod settings;
pub mod sidecar;
pub mod single_use;
pub mod source;
pub mod static_config;
pub mod storage;
pub mod table;
pub mod telemetry;
pub mod tenant;
pub mod throttle;
pub mod workflow;
