//! The warmup's refresh-ahead: a host fetched from the orchestrator whatever
//! the caches hold, written to memory and the table.

use std::sync::Arc;

use super::{Orchestrated, SourceError};
use crate::cache::RuntimeEntry;
use crate::config::RuntimeConfig;
use crate::throttle::Throttle;

/// What a forced refresh (the warmup) found.
#[derive(Debug)]
pub enum Refresh {
    /// The config, and whether its version differs from the copy held before
    /// (the table's, else this instance's memory; no copy counts as a change).
    Found {
        config: Arc<RuntimeConfig>,
        version_changed: bool,
    },
    /// The orchestrator does not know the host (any copy was deleted);
    /// `existed`: there was a copy.
    NotFound { existed: bool },
}

impl Orchestrated {
    /// The pace of this process's orchestrator calls: the warmup's ceiling.
    pub fn throttle(&self) -> &Throttle {
        self.client.throttle()
    }

    /// Fetches `host` from the orchestrator whatever the caches hold, and
    /// writes memory and the table (the warmup's refresh-ahead). A 404
    /// deletes the table's copy.
    pub async fn refresh(&self, host: &str, request_id: &str) -> Result<Refresh, SourceError> {
        let in_memory = match self.runtime.get(host) {
            Some(RuntimeEntry::Found(config)) => Some(config.config_version.clone()),
            _ => None,
        };
        let fetched = self
            .fetch_runtime(self.tier.as_ref(), host, request_id, true)
            .await;
        let previous = match self.tier {
            Some(_) => fetched.replaced,
            None => in_memory,
        };
        match fetched.result {
            Ok(config) => Ok(Refresh::Found {
                version_changed: previous.as_deref() != Some(config.config_version.as_str()),
                config,
            }),
            Err(SourceError::NotFound) => Ok(Refresh::NotFound {
                existed: previous.is_some(),
            }),
            Err(error) => Err(error),
        }
    }
}
