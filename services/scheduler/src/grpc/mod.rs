//! The scheduler's gRPC services: one file per contract service. Each
//! handler reads its request (helpers beside it check the fields), hands it
//! to the engine and shapes the response; no decision is made here.

pub mod run_svc;
pub mod task_svc;
pub mod template_svc;

use orchestra_proto::v1 as pb;

use crate::error::{Error, Result};
use crate::storage::tasks::TaskKey;
use orchestra_kit::error::InvalidArgument;

/// Reads a required attempt key, with field violations under `field`.
pub(crate) fn attempt_key(key: Option<&pb::AttemptKey>, field: &str) -> Result<TaskKey> {
    let key = key.ok_or_else(|| Error::invalid_field(field, "is required"))?;
    let mut violations = Vec::new();
    if key.run_id.is_empty() {
        violations.push(orchestra_model::Violation::new(
            format!("{field}.run_id"),
            "is required",
        ));
    }
    if key.phase_id.is_empty() {
        violations.push(orchestra_model::Violation::new(
            format!("{field}.phase_id"),
            "is required",
        ));
    }
    if key.attempt < 1 {
        violations.push(orchestra_model::Violation::new(
            format!("{field}.attempt"),
            "must be 1 or more",
        ));
    }
    if !violations.is_empty() {
        return Err(Error::InvalidArgument {
            message: format!("{field} is incomplete"),
            violations,
        });
    }
    Ok(TaskKey {
        run_id: key.run_id.clone(),
        phase_id: key.phase_id.clone(),
        attempt: key.attempt,
    })
}

/// Reads a page size: default 50, at most 500.
pub(crate) fn page_size(requested: i32) -> i64 {
    match requested {
        n if n <= 0 => 50,
        n => i64::from(n.min(500)),
    }
}
