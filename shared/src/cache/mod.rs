//! In-memory caches: runtime configs (with stale reads and a negative tier),
//! credentials (memory only, never persisted), single-flight and counters;
//! and the DynamoDB tier of runtime configs shared by every instance.

mod counters;
mod credentials;
mod dynamo;
mod runtime;
mod single_flight;

pub use counters::{Counter, Counters};
pub use credentials::{CredentialCache, CredentialKey};
pub use dynamo::{Lease, RuntimeItem, RuntimeTier, TierError};
pub use runtime::{RuntimeCache, RuntimeEntry};
pub use single_flight::{Flight, SingleFlight};
