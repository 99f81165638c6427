//! The engine: every operation that changes templates, runs, phases and
//! tasks, each one database transaction. The gRPC layer translates requests
//! into these calls and their results into responses; nothing else writes.

mod human;
pub mod run_tx;
mod runs;
mod tasks;
mod templates;

use std::collections::BTreeMap;
use std::time::Duration;

use orchestra_db::Db;
use orchestra_model::{Catalog, Format};
use orchestra_proto::v1 as pb;

use crate::bus::Bus;
use crate::storage::TaskKey;
use crate::storage::models::TemplateRow;
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

/// What a StartRun asks for, its inputs already stored as artifacts.
#[derive(Debug, Clone)]
pub struct StartRun {
    /// The new run's id (chosen first so inputs can be stored under it).
    pub run_id: String,
    /// The template version to freeze.
    pub template: TemplateRow,
    /// Run inputs by name.
    pub inputs: BTreeMap<String, pb::ArtifactRef>,
    /// The run's seed.
    pub seed: u64,
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
}

fn now() -> i64 {
    orchestra_db::time::now_micros()
}

impl Engine {
    /// An engine over a migrated database.
    pub fn new(db: Db, bus: Bus, catalog: Catalog, leases: LeaseSettings) -> Engine {
        Engine {
            db,
            bus,
            catalog,
            leases,
        }
    }

    /// The database, for reads the gRPC layer makes directly.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The wake-up signals.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    fn wake(&self, saved: Saved) {
        if saved.events {
            self.bus.events_appended();
        }
        if saved.tasks {
            self.bus.tasks_changed();
        }
        if saved.outbox {
            self.bus.outbox_added();
        }
    }
}
