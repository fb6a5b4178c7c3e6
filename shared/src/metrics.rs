//! The cache and orchestrator counters, shared by every tier of one process
//! and reported by `/health/ready` (`docs/tenants.md`, Counters).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    RuntimeHit,
    RuntimeMiss,
    RuntimeStaleServe,
    RuntimeNegativeHit,
    RuntimeDynamoHit,
    RuntimeDynamoError,
    OrchestratorCalls,
    CredentialHit,
    CredentialMiss,
    CredentialCoalesced,
}

impl Counter {
    const ALL: [Counter; 10] = [
        Counter::RuntimeHit,
        Counter::RuntimeMiss,
        Counter::RuntimeStaleServe,
        Counter::RuntimeNegativeHit,
        Counter::RuntimeDynamoHit,
        Counter::RuntimeDynamoError,
        Counter::OrchestratorCalls,
        Counter::CredentialHit,
        Counter::CredentialMiss,
        Counter::CredentialCoalesced,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Counter::RuntimeHit => "runtime_hit",
            Counter::RuntimeMiss => "runtime_miss",
            Counter::RuntimeStaleServe => "runtime_stale_serve",
            Counter::RuntimeNegativeHit => "runtime_negative_hit",
            Counter::RuntimeDynamoHit => "runtime_dynamo_hit",
            Counter::RuntimeDynamoError => "runtime_dynamo_error",
            Counter::OrchestratorCalls => "orchestrator_calls",
            Counter::CredentialHit => "credential_hit",
            Counter::CredentialMiss => "credential_miss",
            Counter::CredentialCoalesced => "credential_coalesced",
        }
    }
}

#[derive(Debug, Default)]
pub struct Counters([AtomicU64; Counter::ALL.len()]);

impl Counters {
    pub fn incr(&self, counter: Counter) {
        self.0[counter as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, counter: Counter) -> u64 {
        self.0[counter as usize].load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        Counter::ALL
            .iter()
            .map(|&c| (c.name(), self.get(c)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_counter_apart() {
        let counters = Counters::default();
        counters.incr(Counter::RuntimeHit);
        counters.incr(Counter::RuntimeHit);
        counters.incr(Counter::CredentialCoalesced);
        let snap = counters.snapshot();
        assert_eq!(snap["runtime_hit"], 2);
        assert_eq!(snap["credential_coalesced"], 1);
        assert_eq!(snap["runtime_miss"], 0);
        assert_eq!(snap.len(), 10);
    }
}
