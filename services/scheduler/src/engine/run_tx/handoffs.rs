//! The review service's messages for a run's human phases, put in the
//! outbox with the change that causes them: open a phase's task when it is
//! dispatched, close it when the run no longer waits on it.

use orchestra_db::outbox::Message;
use orchestra_model::{PhaseKind, Selection};
use orchestra_proto::v1 as pb;
use prost::Message as _;

use super::RunTx;
use crate::error::Result;

/// The outbox kind that opens a human task in the review service.
pub const OPEN_HUMAN_TASK: &str = "open_human_task";
/// The outbox kind that closes a human task the run no longer needs.
pub const CLOSE_HUMAN_TASK: &str = "close_human_task";

impl RunTx {
    /// Opens the task of a human phase's new attempt in the review service.
    pub(super) fn open_human_task(&mut self, index: usize) -> Result<()> {
        let spec = self.spec(index)?.clone();
        let task_id = uuid::Uuid::now_v7().to_string();
        let inputs = self.resolve_inputs(index)?;
        let phase = self.phase_mut(index)?;
        phase.human_task_id = Some(task_id.clone());
        let key = pb::AttemptKey {
            run_id: phase.run_id.clone(),
            phase_id: phase.phase_id.clone(),
            attempt: phase.attempt,
        };
        let form_schema_json = spec
            .output
            .as_ref()
            .and_then(|o| o.schema.as_ref())
            .and_then(orchestra_model::SchemaRef::inline)
            .map(ToString::to_string)
            .unwrap_or_default();
        let request = pb::OpenTaskRequest {
            task_id: task_id.clone(),
            kind: if spec.kind == PhaseKind::HumanInput {
                pb::HumanTaskKind::Input
            } else {
                pb::HumanTaskKind::Review
            } as i32,
            key: Some(key.clone()),
            title: spec.display_name().to_owned(),
            template_name: self.run.template_name.clone(),
            form_schema_json,
            output_name: spec
                .output
                .as_ref()
                .map(|o| o.name.clone())
                .unwrap_or_default(),
            inputs: inputs.into_iter().collect(),
            show: spec.show.clone().unwrap_or_default(),
            candidates: spec.candidates.clone().unwrap_or_default(),
            selection: match (&spec.candidates, spec.select.unwrap_or_default()) {
                (None, _) => pb::Selection::Unspecified,
                (Some(_), Selection::One) => pb::Selection::One,
                (Some(_), Selection::AtLeastOne) => pb::Selection::AtLeastOne,
                (Some(_), Selection::Any) => pb::Selection::Any,
            } as i32,
        };
        self.outbox.push(Message::new(
            OPEN_HUMAN_TASK,
            &task_id,
            request.encode_to_vec(),
            self.now,
        ));
        self.events
            .push(pb::run_event::Body::HumanTaskOpened(pb::HumanTaskOpened {
                phase_id: key.phase_id,
                attempt: key.attempt,
                task_id,
            }));
        Ok(())
    }

    /// Closes the open human task of a phase the run no longer waits on
    /// (the run was cancelled, the phase rewound), so it leaves the inbox
    /// and a late answer on it is refused.
    pub(super) fn close_human_task(&mut self, index: usize, why: &str, detail: &str) -> Result<()> {
        let Some(task_id) = self.phase(index)?.human_task_id.clone() else {
            return Ok(());
        };
        let request = pb::CloseTaskRequest {
            task_id: task_id.clone(),
            reason: if why.contains(detail) {
                why.to_owned()
            } else {
                format!("{why}: {detail}")
            },
        };
        self.outbox.push(Message::new(
            CLOSE_HUMAN_TASK,
            &task_id,
            request.encode_to_vec(),
            self.now,
        ));
        Ok(())
    }
}
