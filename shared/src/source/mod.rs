//! Where a host's configuration and its tenant's credentials come from:
//! the environment (standalone) or the orchestrator behind the caches
//! (`orchestrated`: the memory, table and orchestrator tiers; `lease`: which
//! instance of the fleet refreshes a host; `refresh`: the warmup's forced
//! refresh; `credentials`: credential resolution).

mod credentials;
mod lease;
mod orchestrated;
mod refresh;

pub use orchestrated::Orchestrated;
pub use refresh::Refresh;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use secrecy::SecretString;

use crate::config::{ConfigError, Envelope, RuntimeConfig, TenantConfig};
use crate::secrets::{credential_for, Credential, CredentialErrorKind, Role};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("tenant not found")]
    NotFound,
    #[error("orchestrator unavailable")]
    Unavailable,
    #[error(transparent)]
    Configuration(#[from] ConfigError),
}

pub enum ConfigSource {
    Standalone(Standalone),
    Orchestrated(Arc<Orchestrated>),
}

pub struct Standalone {
    host: Option<String>,
    config: Arc<RuntimeConfig>,
    secrets: BTreeMap<&'static str, SecretString>,
}

impl Standalone {
    /// `host`: the only host served, when set (`STANDALONE_HOST`). The
    /// environment's configuration never goes stale.
    pub fn new(
        host: Option<String>,
        config: TenantConfig,
        secrets: BTreeMap<&'static str, SecretString>,
        now: SystemTime,
    ) -> Self {
        let config = RuntimeConfig {
            host: host.clone().unwrap_or_default(),
            tenant: "default".into(),
            host_tenant: "default".into(),
            config_version: "standalone".into(),
            ttl: Duration::MAX,
            config,
            envelope: Envelope::new(),
            fetched_at: now,
            fresh_until: now
                .checked_add(Duration::from_secs(100 * 365 * 24 * 3600))
                .unwrap_or(now),
        };
        Self {
            host,
            config: Arc::new(config),
            secrets,
        }
    }
}

impl ConfigSource {
    /// The orchestrated source, for the warmup's direct refreshes.
    pub fn orchestrated(&self) -> Option<&Arc<Orchestrated>> {
        match self {
            ConfigSource::Orchestrated(o) => Some(o),
            ConfigSource::Standalone(_) => None,
        }
    }

    /// Whether the orchestrator is out of reach for now
    /// ([`crate::orchestrator::OrchestratorClient::is_out_of_reach`]); never
    /// when standalone.
    pub fn is_out_of_reach(&self) -> bool {
        self.orchestrated()
            .is_some_and(|o| o.client.is_out_of_reach())
    }

    /// The configuration of a validated, normalized host.
    pub async fn runtime_config(
        &self,
        host: &str,
        request_id: &str,
    ) -> Result<Arc<RuntimeConfig>, SourceError> {
        match self {
            ConfigSource::Standalone(s) => match &s.host {
                Some(only) if only != host => Err(SourceError::NotFound),
                _ => Ok(s.config.clone()),
            },
            ConfigSource::Orchestrated(o) => o.runtime_config(host, request_id).await,
        }
    }

    /// Resolves the credential `config` names for `role`.
    pub async fn credential(
        &self,
        config: &RuntimeConfig,
        role: Role,
        request_id: &str,
    ) -> Result<Arc<Credential>, CredentialErrorKind> {
        match self {
            ConfigSource::Standalone(s) => {
                let name = config
                    .config
                    .credential_ref(role)
                    .ok_or(CredentialErrorKind::NotFound)?;
                let secret = s
                    .secrets
                    .get(name.expose())
                    .ok_or(CredentialErrorKind::NotFound)?;
                Ok(Arc::new(credential_for(role, secret.clone())))
            }
            ConfigSource::Orchestrated(o) => o.credential(config, role, request_id).await,
        }
    }

    /// Readiness: standalone is always ready; orchestrated is ready when the
    /// orchestrator answers a lookup of `healthcheck.<base domain>` (200 or 404).
    pub async fn ready(&self, request_id: &str) -> bool {
        match self {
            ConfigSource::Standalone(_) => true,
            ConfigSource::Orchestrated(o) => {
                let probe = format!("healthcheck.{}", o.base_domain);
                o.client.runtime_by_host(&probe, request_id).await.is_ok()
            }
        }
    }

    pub fn mode(&self) -> &'static str {
        match self {
            ConfigSource::Standalone(_) => "standalone",
            ConfigSource::Orchestrated(_) => "orchestrated",
        }
    }
}
