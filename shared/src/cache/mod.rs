//! In-memory caches: runtime configs (with stale reads and a negative tier),
//! credentials (memory only, never persisted), single-flight, keys held
//! back through an outage; and the
//! DynamoDB tier of runtime configs shared by every instance.

mod credentials;
mod outage_hold;
mod runtime_memory;
mod runtime_table;
mod single_flight;

pub use credentials::{CredentialCache, CredentialKey};
pub use outage_hold::{OutageHold, OUTAGE_HOLD};
pub use runtime_memory::{RuntimeCache, RuntimeEntry};
pub use runtime_table::{HostCopy, HostItems, Lease, RuntimeItem, RuntimeTier, TierError};
pub use single_flight::{Flight, SingleFlight};
