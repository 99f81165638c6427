//! The phase executor: runs the work of `llm` and `function` phases.
//!
//! Module map:
//! - [`worker`]: the lease loop — leases tasks from the scheduler, keeps
//!   each lease alive, runs it, reports the outcome. One loop runs per
//!   [`Pool`], so quick functions never wait behind slow model calls.
//! - [`attempt`]: one attempt of one phase: inputs from the artifact store,
//!   the output computed and stored, validated against its schema.
//! - [`functions`]: the registry of deterministic functions a `function`
//!   phase names: the generic JSON ones (`orchestra-functions`) and the
//!   Backtrack example's (`orchestra-backtrack`).
//! - [`structured`]: checks a model's answer against the output schema and
//!   asks the model to repair it, with the violations, when it breaks it.
//! - [`prompt`]: renders an `llm` phase's minijinja prompt over its inputs.
//! - [`providers`]: the [`providers::Provider`] trait every LLM backend
//!   implements, the retryable/permanent [`providers::ProviderError`], the
//!   HTTP providers (Anthropic, OpenAI, DeepSeek, Gemini, OpenAI-compatible
//!   servers) registered from the environment's keys, and the offline
//!   provider that lets examples run with no key and no network.
//! - [`grpc`]: the gRPC handlers (`grpc/provider_svc.rs`: ProviderService,
//!   listing the providers).
//!
//! The executor keeps no state of its own: a killed executor's leases
//! expire and the scheduler hands its attempts to another.

pub mod attempt;
pub mod config;
pub mod error;
pub mod functions;
pub mod grpc;
pub mod prompt;
pub mod providers;
pub mod structured;
pub mod worker;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use orchestra_kit::Background;
use orchestra_kit::config::Settings;
use orchestra_kit::server::ServiceRoutes;
use orchestra_proto::v1 as pb;
use orchestra_proto::v1::artifact_service_client::ArtifactServiceClient;
use orchestra_proto::v1::provider_service_server::ProviderServiceServer;
use orchestra_proto::v1::task_service_client::TaskServiceClient;

pub use config::Config;
pub use error::{AttemptFailure, Error};

/// Phases of some kinds, leased on a Lease stream of their own with their
/// own slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// The kind's name, which suffixes the executor id.
    pub name: &'static str,
    /// The phase kind this pool runs.
    pub kind: pb::PhaseKind,
    /// How many of its phases run at once.
    pub slots: u32,
}

impl Pool {
    /// The id this pool's stream leases under: the scheduler counts slots
    /// and tracks presence and suspension per executor id, so two streams
    /// under one id would take each other over and share one count.
    pub fn executor_id(&self, executor_id: &str) -> String {
        format!("{executor_id}/{}", self.name)
    }
}

/// An executor ready to lease work. Cheap to clone.
#[derive(Clone)]
pub struct Executor {
    context: attempt::AttemptContext,
    id: String,
    pools: Vec<Pool>,
}

impl Executor {
    /// Prepares clients of the scheduler and the artifact store (connected on
    /// first use, so start-up order does not matter) and the providers. A
    /// URL or provider setting that cannot be used is [`Error::Config`],
    /// naming its variable.
    pub fn new(config: &Config) -> Result<Executor, Error> {
        let providers = match &config.providers {
            Some(settings) => settings.clone(),
            None => providers::settings::ProviderSettings::from_env()?,
        };
        let registry = providers.registry(&config.http_tuning())?;
        tracing::debug!(providers = ?registry.names(), "providers configured");
        let bytes = config.message_limit().channel_bytes();
        let tasks = TaskServiceClient::new(orchestra_kit::channel::lazy(
            &config.scheduler_url,
            &Config::variable("scheduler_url"),
        )?)
        .max_decoding_message_size(bytes)
        .max_encoding_message_size(bytes);
        let artifacts = ArtifactServiceClient::new(orchestra_kit::channel::lazy(
            &config.artifact_store_url,
            &Config::variable("artifact_store_url"),
        )?)
        .max_decoding_message_size(bytes)
        .max_encoding_message_size(bytes);
        Ok(Executor {
            context: attempt::AttemptContext {
                artifacts,
                tasks,
                providers: Arc::new(registry),
                schema_repairs: config.schema_repairs,
            },
            id: config.executor_id(),
            pools: vec![
                Pool {
                    name: "llm",
                    kind: pb::PhaseKind::Llm,
                    slots: config.slots.max(1),
                },
                Pool {
                    name: "function",
                    kind: pb::PhaseKind::Function,
                    slots: config.function_slots.max(1),
                },
            ],
        })
    }

    /// This executor's id; the scheduler sees one id per pool
    /// ([`Pool::executor_id`]).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The providers this executor calls, sorted: what a scheduler in the
    /// same process lets templates name (`orchestra up` passes them on).
    pub fn provider_names(&self) -> Vec<String> {
        self.context
            .providers
            .names()
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// The pools this executor leases for, one Lease stream each.
    pub fn pools(&self) -> &[Pool] {
        &self.pools
    }

    /// Adds ProviderService.
    pub fn add_routes(&self, routes: &mut ServiceRoutes) {
        routes.add(ProviderServiceServer::new(grpc::ProviderSvc::new(
            self.context.providers.clone(),
        )));
    }

    /// Starts one lease loop per pool, each leasing and running tasks of
    /// its kind. Stopping or dropping the handle stops leasing; the leases
    /// held then expire (or are released when the stream closes) and go to
    /// another executor.
    pub fn start(&self) -> Background {
        let mut background = Background::new();
        for pool in &self.pools {
            background.spawn(
                "lease loop",
                worker::run(
                    self.context.clone(),
                    pool.executor_id(&self.id),
                    pool.slots,
                    vec![pool.kind],
                ),
            );
        }
        background
    }
}

/// Runs the executor (its lease loop and its gRPC server) until `shutdown`.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    let executor = Executor::new(&config)?;
    let mut routes = ServiceRoutes::new();
    executor.add_routes(&mut routes);
    let background = executor.start();
    let served = orchestra_kit::server::serve(routes, listener, shutdown).await;
    background.stop().await;
    Ok(served?)
}
