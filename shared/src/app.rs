//! The state one process builds once and every invocation borrows: settings,
//! the pooled HTTP client, the config source with its caches, and the tenant
//! registry; plus the tenant pipeline every request goes through.

use std::sync::Arc;

use crate::bounded::Limits;
use crate::clock::Clock;
use crate::config::{standalone_config, ConfigError};
use crate::host;
use crate::ledger::Ledger;
use crate::metrics::Counters;
use crate::settings::{Mode, Settings, SettingsError};
use crate::source::{ConfigSource, Orchestrated, SourceError, Standalone};
use crate::table::Table;
use crate::tenant::{ServicesError, TenantContext, TenantRegistry};
use crate::workflow::Workflow;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("standalone configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Why a request's tenant could not be served. Users see only 404 or 503.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    #[error("invalid host: {0}")]
    InvalidHost(#[from] host::HostError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Services(#[from] ServicesError),
}

impl TenantError {
    /// Invalid hosts and unknown tenants are answered alike (404); the rest is 503.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            TenantError::InvalidHost(_) | TenantError::Source(SourceError::NotFound)
        )
    }
}

pub struct App {
    pub settings: Arc<Settings>,
    pub http: reqwest::Client,
    pub source: Arc<ConfigSource>,
    pub tenants: TenantRegistry,
    pub counters: Arc<Counters>,
    /// The shared table (`PUBLISHER_TABLE`), when connected.
    pub table: Option<Table>,
    /// The publish workflow over this process's ledger (the table's, or
    /// its own memory).
    pub workflow: Workflow,
    /// The one clock every time-dependent decision reads.
    pub clock: Clock,
}

impl App {
    /// The process state, connected to `PUBLISHER_TABLE` when it is set:
    /// what the functions' `main` builds.
    pub async fn start(settings: Settings) -> Result<Self, StartupError> {
        let table = match &settings.publisher_table {
            Some(name) => Some(Table::connect(name).await),
            None => None,
        };
        Self::with_table(settings, table)
    }

    /// The process state without any table: memory-only caches and state,
    /// whatever `PUBLISHER_TABLE` says.
    pub fn new(settings: Settings) -> Result<Self, StartupError> {
        Self::with_table(settings, None)
    }

    /// The process state on `table` (none: memory only).
    pub fn with_table(settings: Settings, table: Option<Table>) -> Result<Self, StartupError> {
        Self::assemble(settings, table, Clock::system())
    }

    /// The process state on `table` (none: memory only), reading `clock`.
    pub fn assemble(
        settings: Settings,
        table: Option<Table>,
        clock: Clock,
    ) -> Result<Self, StartupError> {
        Self::assemble_within(settings, table, clock, Limits::PRODUCTION)
    }

    /// [`App::assemble`] with the tenants' clients bounded by `limits`
    /// (production: [`Limits::PRODUCTION`]; tests give shorter times).
    pub fn assemble_within(
        settings: Settings,
        table: Option<Table>,
        clock: Clock,
        limits: Limits,
    ) -> Result<Self, StartupError> {
        for secret in settings.secret_values() {
            crate::telemetry::register_secret(secret);
        }
        let http = reqwest::Client::builder()
            .pool_idle_timeout(std::time::Duration::from_secs(60))
            .build()?;
        let counters = Arc::new(Counters::default());
        let source = match &settings.mode {
            Mode::Standalone(s) => ConfigSource::Standalone(Standalone::new(
                s.host.clone(),
                standalone_config(&s.env)?,
                s.secrets.clone(),
                clock.now(),
            )),
            Mode::Orchestrated(o) => {
                let orchestrated = Orchestrated::new(
                    o,
                    &settings.cache,
                    &settings.base_domain,
                    http.clone(),
                    counters.clone(),
                    clock.clone(),
                );
                ConfigSource::Orchestrated(Arc::new(match &table {
                    Some(table) => orchestrated.with_table(table.clone()),
                    None => orchestrated,
                }))
            }
        };
        let source = Arc::new(source);
        let tenants = TenantRegistry::new(
            source.clone(),
            &settings,
            http.clone(),
            limits,
            clock.clone(),
        );
        let workflow = Workflow::new(Ledger::new(table.clone(), clock.clone()), clock.clone());
        Ok(Self {
            settings: Arc::new(settings),
            http,
            source,
            tenants,
            counters,
            table,
            workflow,
            clock,
        })
    }

    /// The tenant pipeline: host rules, runtime config, service set.
    pub async fn tenant(
        &self,
        raw_host: &str,
        request_id: &str,
    ) -> Result<TenantContext, TenantError> {
        let host = host::validate(raw_host)?;
        let config = self.source.runtime_config(&host, request_id).await?;
        let services = self.tenants.services(&config, request_id).await?;
        Ok(TenantContext {
            host,
            config,
            services,
        })
    }
}
