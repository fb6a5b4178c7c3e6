//! In-memory caches: runtime configs (with stale reads and a negative tier),
//! credentials (memory only, never persisted), single-flight and counters.

mod counters;
mod credentials;
mod runtime;
mod single_flight;

pub use counters::{Counter, Counters};
pub use credentials::{CredentialCache, CredentialKey};
pub use runtime::{RuntimeCache, RuntimeEntry};
pub use single_flight::{Flight, SingleFlight};
