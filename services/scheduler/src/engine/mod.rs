//! The engine: every operation that changes templates, runs, phases and
//! tasks, each one database transaction, and the streams that follow them.
//! The gRPC layer translates requests into these calls and their results
//! into responses; nothing else writes.
//!
//! - [`run_tx`]: the unit of work on one run, entered through [`in_run_tx!`];
//!   [`frozen`]: each template version parsed once for all its runs;
//! - [`templates`]: storing and validating templates;
//! - [`runs`]: starting, reading and steering runs; [`inputs`]: checking and
//!   storing a new run's inputs; [`watch`]: a run's event stream;
//! - [`tasks`]: attempts as executors report them, [`completions`]: a run's
//!   completions committed together, [`outputs`]: what they accept; [`leases`]: the Lease
//!   stream, executors' presence and the sweeps that end lost leases;
//! - [`human`]: what people did on human phases.

mod completions;
mod frozen;
mod human;
mod inputs;
mod leases;
mod outputs;
pub mod run_tx;
mod runs;
mod tasks;
mod templates;
mod watch;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use orchestra_db::Db;
use orchestra_kit::limits::MessageLimit;
use orchestra_model::{Catalog, Format};
use orchestra_proto::v1 as pb;
use orchestra_proto::v1::artifact_service_client::ArtifactServiceClient;
use tonic::transport::Channel;

use crate::bus::Bus;
use crate::storage::tasks::TaskKey;
pub use outputs::Output;
use run_tx::Saved;

/// How leases behave.
#[derive(Debug, Clone, Copy)]
pub struct LeaseSettings {
    /// How long a lease lasts without a heartbeat.
    pub ttl: Duration,
    /// Lease expiries retried at least this many times, whatever the phase's
    /// retry policy: an executor that vanished is not the phase's fault.
    pub min_attempts_on_expiry: i32,
}

impl LeaseSettings {
    /// How long an executor may go unseen (its Lease stream closed, or the
    /// replica serving it gone) before its leases are released: one
    /// heartbeat interval (a third of the TTL), and at most 2 s so a
    /// restarted process retries an interrupted attempt within seconds.
    pub fn absent_after(&self) -> Duration {
        (self.ttl / 3).min(Duration::from_secs(2))
    }

    /// How often a replica marks the executors whose streams it serves as
    /// seen: several times within [`LeaseSettings::absent_after`].
    pub fn presence_interval(&self) -> Duration {
        (self.absent_after() / 4).max(Duration::from_millis(20))
    }

    /// How long after a database outage ends before leases expire again:
    /// executors get a heartbeat interval to extend the leases whose
    /// deadline passed while nobody could heartbeat, and to reconnect.
    pub fn settle_after_outage(&self) -> Duration {
        self.ttl / 3 + self.absent_after()
    }
}

/// A template's source as received.
#[derive(Debug, Clone)]
pub struct SourceIn {
    /// The text.
    pub source: String,
    /// YAML, JSON or detect.
    pub format: Format,
    /// Files it refers to, by relative path.
    pub files: BTreeMap<String, String>,
}

/// What a StartRun asks for.
#[derive(Debug, Clone)]
pub struct StartRun {
    /// The template to run.
    pub template_name: String,
    /// Its version (0 = latest).
    pub template_version: i32,
    /// Run inputs given inline, as JSON text by name.
    pub inputs: HashMap<String, String>,
    /// Run inputs uploaded to the artifact store before, by name.
    pub input_refs: HashMap<String, pb::ArtifactRef>,
    /// The run's seed (a random one when `None`).
    pub seed: Option<u64>,
    /// Dispatch READY phases without waiting for a person.
    pub auto_advance: bool,
    /// Makes StartRun idempotent.
    pub request_id: Option<String>,
}

/// What a person did on a human phase, as the review service reports it.
#[derive(Debug, Clone)]
pub struct HumanResolution {
    /// The phase attempt.
    pub key: TaskKey,
    /// What happened.
    pub resolution: pb::HumanResolution,
    /// The reviewer's comment.
    pub comment: String,
    /// Who.
    pub actor: Option<pb::Actor>,
    /// The submitted form or decision record.
    pub output: Option<pb::ArtifactRef>,
    /// With RETRY: which phases to run again.
    pub retry_phases: Vec<String>,
}

/// The scheduler's engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    db: Db,
    bus: Bus,
    catalog: Catalog,
    leases: LeaseSettings,
    /// Stores run inputs (see [`Engine::start_run`]) and publishes an
    /// accepted attempt's output (see [`Engine::complete`]).
    artifacts: ArtifactServiceClient<Channel>,
    /// The largest run input accepted.
    limit: MessageLimit,
    /// Parsed templates, shared by every change to their runs.
    frozen: frozen::FrozenCache,
    /// Completions waiting for their run's next group commit.
    completions: completions::Combiner,
    /// When the database came back after an outage, in epoch micros: 0 when
    /// no outage was seen, [`leases::IN_OUTAGE`] while one lasts.
    recovered_at: Arc<AtomicI64>,
}

/// Runs one change to one run as a unit of work, the one way a run is
/// changed: opens a transaction, loads the run under its row lock as `$tx`
/// (`$c` is the connection, for the body's own queries), evaluates `$body`
/// (a block whose value is a `Result<$t>`; `return` leaves the block
/// early), saves what changed, commits and wakes waiters. An `Err` rolls it
/// all back and leaves the calling function with it; otherwise the macro's
/// value is the body's. (Creating a run is the same unit of work begun with
/// [`run_tx::RunTx::new`] instead of a load: see `Engine::start_run`.)
///
/// `scope = Scope::Phase(id)` before the closure loads only that phase and
/// what finishing it can move (the hot path); without it every phase is
/// loaded.
///
/// A macro rather than a method, because the body runs on whichever
/// backend's connection the pool holds and a closure cannot be generic over
/// it: [`orchestra_db::db_tx!`] pastes the body once per backend.
macro_rules! in_run_tx {
    ($engine:expr, $run_id:expr, |$tx:ident| -> $t:ty $body:block) => {
        $crate::engine::in_run_tx!($engine, $run_id, |c, $tx| -> $t $body)
    };
    ($engine:expr, $run_id:expr, |$c:ident, $tx:ident| -> $t:ty $body:block) => {
        $crate::engine::in_run_tx!(
            $engine, $run_id, scope = $crate::engine::run_tx::Scope::All, |$c, $tx| -> $t $body
        )
    };
    ($engine:expr, $run_id:expr, scope = $scope:expr, |$c:ident, $tx:ident| -> $t:ty $body:block) => {{
        let run_id: String = $run_id.to_owned();
        let (value, saved, own) = orchestra_db::db_tx!(&$engine.db, |$c| -> $crate::error::Result<(
            $t,
            $crate::engine::run_tx::Saved,
            $crate::bus::OwnCommit
        )> {
            let mut loaded = $crate::engine::run_tx::RunTx::load(
                $c,
                &$engine.frozen,
                &run_id,
                $scope,
                $crate::engine::now(),
            )
            .await?;
            let result: $crate::error::Result<$t> = async {
                let $tx = &mut loaded;
                $body
            }
            .await;
            let value = result?;
            let saved = loaded.save($c).await?;
            let own = $engine.bus.expect_commit(&saved.events);
            Ok((value, saved, own))
        })?;
        own.keep();
        $engine.wake(saved);
        value
    }};
}
pub(crate) use in_run_tx;

fn now() -> i64 {
    orchestra_db::time::now_micros()
}

impl Engine {
    /// An engine over a migrated database, storing run inputs (up to
    /// `limit` each) and publishing accepted outputs in the artifact store
    /// through `artifacts`.
    pub fn new(
        db: Db,
        bus: Bus,
        catalog: Catalog,
        leases: LeaseSettings,
        artifacts: ArtifactServiceClient<Channel>,
        limit: MessageLimit,
    ) -> Engine {
        Engine {
            db,
            bus,
            catalog,
            leases,
            artifacts,
            limit,
            frozen: frozen::FrozenCache::default(),
            completions: completions::Combiner::default(),
            recovered_at: Arc::new(AtomicI64::new(0)),
        }
    }

    /// The database, for the outbox dispatcher and to tell the backend.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The wake-up signals.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// After a commit: hands its events to the run's watchers here (other
    /// replicas hear of them by notification) and wakes what it concerns.
    fn wake(&self, saved: Saved) {
        self.fill_later(self.bus.committed(saved.events));
        self.bus
            .tasks_changed_for(saved.queued_kinds.iter().map(String::as_str));
        if saved.outbox {
            self.bus.outbox_added();
        }
    }
}
