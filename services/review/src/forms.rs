//! Checking a submitted form against the task's JSON Schema, fault by fault.

use serde_json::Value;

use orchestra_kit::error::{InvalidArgument as _, Violation};

use crate::{Error, Result};

/// Parses `content_json` and checks it against `schema_json` (anything goes
/// when the schema is empty). Each fault becomes a field violation whose
/// field is the JSON pointer of the offending value (`/` for the root) and
/// whose description is the validator's message.
pub fn check_submission(schema_json: &str, content_json: &str) -> Result<Value> {
    let content: Value = serde_json::from_str(content_json)
        .map_err(|e| Error::invalid_field("content_json", format!("is not valid JSON: {e}")))?;
    if schema_json.trim().is_empty() {
        return Ok(content);
    }
    let schema: Value = serde_json::from_str(schema_json).map_err(|e| {
        Error::FailedPrecondition(format!("the task's form schema is not valid JSON: {e}"))
    })?;
    let validator = jsonschema::validator_for(&schema).map_err(|e| {
        Error::FailedPrecondition(format!("the task's form schema does not compile: {e}"))
    })?;
    let violations: Vec<Violation> = validator
        .iter_errors(&content)
        .map(|error| {
            let path = error.instance_path().as_str();
            let field = if path.is_empty() { "/" } else { path };
            Violation::new(field, error.to_string())
        })
        .collect();
    if violations.is_empty() {
        Ok(content)
    } else {
        Err(Error::InvalidArgument {
            message: format!("the form has {} fault(s)", violations.len()),
            violations,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"{
        "type": "object",
        "required": ["goal"],
        "properties": {
            "goal": {"type": "string", "minLength": 3},
            "budget": {"type": "integer", "minimum": 0}
        }
    }"#;

    fn violations(result: Result<Value>) -> Vec<Violation> {
        match result {
            Err(Error::InvalidArgument { violations, .. }) => violations,
            other => panic!("expected violations, got {other:?}"),
        }
    }

    #[test]
    fn faults_are_reported_by_pointer() {
        let found = violations(check_submission(SCHEMA, r#"{"budget": -1}"#));
        assert_eq!(
            found,
            vec![
                Violation::new("/", "\"goal\" is a required property"),
                Violation::new("/budget", "-1 is less than the minimum of 0"),
            ]
        );
    }

    #[test]
    fn malformed_json_names_content_json() {
        let found = violations(check_submission(SCHEMA, "{"));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].field, "content_json");
    }

    #[test]
    fn a_valid_form_passes_and_no_schema_accepts_any_json() {
        check_submission(SCHEMA, r#"{"goal": "ship it"}"#).expect("valid");
        check_submission("", "[1]").expect("no schema");
    }

    #[test]
    fn a_broken_schema_is_the_task_s_fault() {
        let err = check_submission(r#"{"type": 7}"#, "{}").expect_err("bad schema");
        assert!(matches!(err, Error::FailedPrecondition(_)), "{err:?}");
    }
}
