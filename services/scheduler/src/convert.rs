//! Conversions between stored rows, the model's types and the contracts'
//! messages. Nothing here decides anything.

use orchestra_kit::time::timestamp;
use orchestra_model::{PhaseKind, PhaseState, RunStatus, Template};
use orchestra_proto::v1 as pb;

use crate::error::{Error, Result};
use crate::storage::models::{PhaseRow, RunRow, TemplateRow};

/// Reads a stored JSON reference.
pub fn parse_ref(json: &str) -> Result<pb::ArtifactRef> {
    serde_json::from_str(json).map_err(|e| Error::Corrupt(format!("artifact reference: {e}")))
}

/// Writes a reference for a JSON column (the proto3 JSON mapping).
pub fn ref_json(r: &pb::ArtifactRef) -> String {
    serde_json::to_string(r).unwrap_or_default()
}

/// Reads a run's stored inputs.
pub fn parse_inputs(json: &str) -> Result<std::collections::BTreeMap<String, pb::ArtifactRef>> {
    serde_json::from_str(json).map_err(|e| Error::Corrupt(format!("run inputs: {e}")))
}

/// The contract's phase state.
pub fn phase_state(state: PhaseState) -> pb::PhaseState {
    match state {
        PhaseState::Blocked => pb::PhaseState::Blocked,
        PhaseState::Ready => pb::PhaseState::Ready,
        PhaseState::Queued => pb::PhaseState::Queued,
        PhaseState::Running => pb::PhaseState::Running,
        PhaseState::Completed => pb::PhaseState::Completed,
        PhaseState::Error => pb::PhaseState::Error,
        PhaseState::WaitingForHuman => pb::PhaseState::WaitingForHuman,
        PhaseState::ReadyForReview => pb::PhaseState::ReadyForReview,
        PhaseState::Approved => pb::PhaseState::Approved,
        PhaseState::Rejected => pb::PhaseState::Rejected,
        PhaseState::Skipped => pb::PhaseState::Skipped,
        PhaseState::Cancelled => pb::PhaseState::Cancelled,
    }
}

/// The contract's run status.
pub fn run_status(status: RunStatus) -> pb::RunStatus {
    match status {
        RunStatus::Pending => pb::RunStatus::Pending,
        RunStatus::Running => pb::RunStatus::Running,
        RunStatus::WaitingForHuman => pb::RunStatus::WaitingForHuman,
        RunStatus::Completed => pb::RunStatus::Completed,
        RunStatus::Failed => pb::RunStatus::Failed,
        RunStatus::Cancelled => pb::RunStatus::Cancelled,
    }
}

/// The model's run status for a contract's, if it names one.
pub fn model_run_status(status: pb::RunStatus) -> Option<RunStatus> {
    RunStatus::ALL
        .into_iter()
        .find(|s| run_status(*s) == status)
}

/// The contract's phase kind.
pub fn phase_kind(kind: &PhaseKind) -> pb::PhaseKind {
    match kind {
        PhaseKind::HumanInput => pb::PhaseKind::HumanInput,
        PhaseKind::HumanReview => pb::PhaseKind::HumanReview,
        PhaseKind::Llm => pb::PhaseKind::Llm,
        PhaseKind::Function => pb::PhaseKind::Function,
        PhaseKind::Loop => pb::PhaseKind::Loop,
        PhaseKind::Unknown(_) => pb::PhaseKind::Unspecified,
    }
}

/// Parses a stored phase state.
pub fn stored_state(row: &PhaseRow) -> Result<PhaseState> {
    row.state
        .parse()
        .map_err(|_| Error::Corrupt(format!("phase state `{}`", row.state)))
}

/// Parses a stored run status.
pub fn stored_status(row: &RunRow) -> Result<RunStatus> {
    stored_status_of(&row.status)
}

/// Parses a run status column.
pub fn stored_status_of(status: &str) -> Result<RunStatus> {
    status
        .parse()
        .map_err(|_| Error::Corrupt(format!("run status `{status}`")))
}

/// Parses a frozen template spec.
pub fn parse_spec(spec_json: &str) -> Result<Template> {
    Template::parse(spec_json, orchestra_model::Format::Json)
        .map_err(|v| Error::Corrupt(format!("frozen template: {v}")))
}

/// The graph of a template, for clients that draw it.
pub fn phase_definitions(template: &Template) -> Vec<pb::PhaseDefinition> {
    template
        .walk_phases()
        .into_iter()
        .map(|(_, phase)| pb::PhaseDefinition {
            id: phase.id.clone(),
            title: phase.display_name().to_owned(),
            kind: phase_kind(&phase.kind) as i32,
            needs: phase.needs.clone(),
            output_name: phase
                .output
                .as_ref()
                .map(|o| o.name.clone())
                .unwrap_or_default(),
        })
        .collect()
}

/// A stored template version as the contract shows it.
pub fn template_message(row: &TemplateRow) -> Result<pb::Template> {
    let template = parse_spec(&row.spec_json)?;
    Ok(pb::Template {
        id: row.id.clone(),
        name: row.name.clone(),
        version: row.version,
        description: row.description.clone(),
        source: row.source.clone(),
        format: match row.format.as_str() {
            "json" => pb::TemplateFormat::Json,
            _ => pb::TemplateFormat::Yaml,
        } as i32,
        spec_json: row.spec_json.clone(),
        phases: phase_definitions(&template),
        content_sha256: row.content_sha256.clone(),
        created_at: timestamp(row.created_at),
    })
}

/// A run as the contract shows it.
pub fn run_message(row: &RunRow) -> Result<pb::Run> {
    let inputs = parse_inputs(&row.inputs_json)?;
    Ok(pb::Run {
        id: row.id.clone(),
        template_name: row.template_name.clone(),
        template_version: row.template_version,
        template_id: row.template_id.clone(),
        status: run_status(stored_status(row)?) as i32,
        seed: row.seed as u64,
        auto_advance: row.auto_advance,
        created_at: timestamp(row.created_at),
        updated_at: timestamp(row.updated_at),
        last_seq: row.last_seq,
        inputs: inputs.into_iter().collect(),
    })
}

/// A run's phases as the contract shows them, described by the run's
/// frozen template.
pub fn phase_messages(run: &RunRow, phases: &[PhaseRow]) -> Result<Vec<pb::Phase>> {
    let template = parse_spec(&run.spec_json)?;
    phases.iter().map(|p| phase_message(p, &template)).collect()
}

/// A phase as the contract shows it.
pub fn phase_message(row: &PhaseRow, template: &Template) -> Result<pb::Phase> {
    let spec = template
        .walk_phases()
        .into_iter()
        .find(|(_, p)| p.id == row.phase_id)
        .map(|(_, p)| p);
    let provider_label = spec
        .and_then(|p| p.model.as_ref())
        .map(|m| {
            if m.provider == "offline" {
                "offline (deterministic, no network)".to_owned()
            } else {
                m.provider.clone()
            }
        })
        .unwrap_or_default();
    Ok(pb::Phase {
        id: row.phase_id.clone(),
        title: spec
            .map(|p| p.display_name().to_owned())
            .unwrap_or_default(),
        kind: spec.map_or(pb::PhaseKind::Unspecified, |p| phase_kind(&p.kind)) as i32,
        state: phase_state(stored_state(row)?) as i32,
        attempt: row.attempt,
        needs: spec.map(|p| p.needs.clone()).unwrap_or_default(),
        started_at: timestamp(row.started_at),
        finished_at: timestamp(row.finished_at),
        error: row.error.clone(),
        output: row.output_json.as_deref().map(parse_ref).transpose()?,
        human_task_id: row.human_task_id.clone().unwrap_or_default(),
        executor_id: row.executor_id.clone().unwrap_or_default(),
        provider_label,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_and_status_maps_to_a_distinct_message_value() {
        let states: std::collections::BTreeSet<i32> = PhaseState::ALL
            .iter()
            .map(|s| phase_state(*s) as i32)
            .collect();
        assert_eq!(states.len(), PhaseState::ALL.len());
        for status in RunStatus::ALL {
            assert_eq!(model_run_status(run_status(status)), Some(status));
        }
    }

    #[test]
    fn references_round_trip_through_json() {
        let r = pb::ArtifactRef {
            artifact_id: "a".into(),
            version: 3,
            name: "variant".into(),
            run_id: "r".into(),
            phase_id: "p".into(),
            attempt: 2,
            media_type: "application/json".into(),
            sha256: "ff".into(),
            size_bytes: 10,
        };
        assert_eq!(parse_ref(&ref_json(&r)).expect("parses"), r);
    }
}
