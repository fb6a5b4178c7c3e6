//! In-memory caches: runtime configs (with stale reads and a negative tier),
//! credentials (memory only, never persisted), single-flight; and the
//! DynamoDB tier of runtime configs shared by every instance.

mod credentials;
mod runtime_memory;
mod runtime_table;
mod single_flight;

pub use credentials::{CredentialCache, CredentialKey};
pub use runtime_memory::{RuntimeCache, RuntimeEntry};
pub use runtime_table::{HostItems, Lease, RuntimeItem, RuntimeTier, TierError};
pub use single_flight::{Flight, SingleFlight};
