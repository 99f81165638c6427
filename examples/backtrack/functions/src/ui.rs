//! The UI document model the Backtrack functions share.
//!
//! A UI document (`examples/backtrack/schemas/ui.json`) is `{version, tokens,
//! slots}`; a UI patch (`ui-patch.json`) is `{slot, summary, ops}` with RFC 6902
//! `add`/`replace`/`remove` operations under `/slots/`. Functions accept either
//! a UI document or a context whose `baseline` is one, because templates wire
//! the whole context artifact into them.

use serde::Deserialize;
use serde_json::Value;

use orchestra_functions::FunctionError;

/// The operations a UI patch may use; `move`, `copy` and `test` are left out
/// so every change is visible in the patch itself.
pub const ALLOWED_OPS: [&str; 3] = ["add", "replace", "remove"];

/// A parsed UI patch, the output of a variant phase.
#[derive(Debug, Clone, Deserialize)]
pub struct UiPatch {
    /// The slot the patch says it changes.
    pub slot: String,
    /// The author's one-line description.
    #[serde(default)]
    pub summary: String,
    /// The operations, applied in order.
    pub ops: Vec<UiOp>,
}

/// One operation of a [`UiPatch`].
#[derive(Debug, Clone, Deserialize)]
pub struct UiOp {
    /// `add`, `replace` or `remove`.
    pub op: String,
    /// JSON pointer into the UI document.
    pub path: String,
    /// The new value; `None` for `remove`.
    #[serde(default)]
    pub value: Option<Value>,
}

/// Parses input `input` as a UI patch.
pub fn parse_patch(input: &str, value: &Value) -> Result<UiPatch, FunctionError> {
    UiPatch::deserialize(value)
        .map_err(|error| FunctionError::invalid_input(input, format!("not a ui patch: {error}")))
}

/// Returns the UI document held by input `input`: the value itself when it
/// has `slots`, or its `baseline` when it is a context.
pub fn ui_document<'a>(input: &str, value: &'a Value) -> Result<&'a Value, FunctionError> {
    if value.get("slots").is_some_and(Value::is_object) {
        return Ok(value);
    }
    match value.get("baseline") {
        Some(baseline) if baseline.get("slots").is_some_and(Value::is_object) => Ok(baseline),
        _ => Err(FunctionError::invalid_input(
            input,
            "expected a ui document (with `slots`) or a context (with `baseline`)",
        )),
    }
}

/// Returns the context's `target_slot`, when `value` is a context.
pub fn target_slot(value: &Value) -> Option<&str> {
    value.get("target_slot").and_then(Value::as_str)
}

/// Applies `patch` (from input `input`) to `document` in place, checking the
/// UI-patch rules json-patch does not know: allowed ops, `/slots/` paths and
/// a value for `add`/`replace`. Callers pass a copy: on error the document
/// may hold the operations before the failing one.
pub fn apply_patch(
    document: &mut Value,
    patch: &UiPatch,
    input: &str,
) -> Result<(), FunctionError> {
    for (index, op) in patch.ops.iter().enumerate() {
        let fail = |reason: String| FunctionError::OpFailed {
            input: input.to_owned(),
            index,
            op: op.op.clone(),
            path: op.path.clone(),
            reason,
        };
        if !ALLOWED_OPS.contains(&op.op.as_str()) {
            return Err(fail(format!(
                "op must be one of {}",
                ALLOWED_OPS.join(", ")
            )));
        }
        if !op.path.starts_with("/slots/") {
            return Err(fail("path must start with /slots/".to_owned()));
        }
        let mut raw = serde_json::json!({ "op": op.op, "path": op.path });
        if op.op != "remove" {
            let value = op
                .value
                .clone()
                .ok_or_else(|| fail("a value is required".to_owned()))?;
            raw["value"] = value;
        }
        let operation: json_patch::PatchOperation =
            serde_json::from_value(raw).map_err(|error| fail(error.to_string()))?;
        json_patch::patch(document, &[operation]).map_err(|error| fail(error.kind.to_string()))?;
    }
    Ok(())
}

/// Resolves a token reference such as `$color.primary` against a document's
/// `tokens`; `None` when `reference` is not a reference or names no token.
pub fn resolve_token<'a>(tokens: &'a Value, reference: &str) -> Option<&'a str> {
    let (group, name) = reference.strip_prefix('$')?.split_once('.')?;
    tokens.get(group)?.get(name)?.as_str()
}

/// Whether `pointer` is `prefix` or lies inside it, by whole path segments.
pub fn pointer_within(pointer: &str, prefix: &str) -> bool {
    pointer == prefix
        || pointer
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testdata;

    #[test]
    fn ui_document_accepts_a_document_or_a_context() {
        let context = testdata::context();
        assert_eq!(ui_document("base", &context), Ok(&context["baseline"]));
        let baseline = testdata::baseline();
        assert_eq!(ui_document("base", &baseline), Ok(&baseline));
        let error = ui_document("base", &json!({"intent": "x"})).expect_err("fails");
        assert!(
            error.to_string().starts_with("input `base` is invalid"),
            "{error}"
        );
    }

    #[test]
    fn apply_patch_names_the_failing_op() {
        let mut document = testdata::baseline();
        let patch = parse_patch(
            "a",
            &json!({"slot": "hero", "ops": [
                {"op": "replace", "path": "/slots/hero/props/gap", "value": "$space.md"},
                {"op": "replace", "path": "/slots/hero/children/9/props/text", "value": "x"}
            ]}),
        )
        .expect("parses");
        let error = apply_patch(&mut document, &patch, "a").expect_err("fails");
        assert!(
            error.to_string().starts_with(
                "op 1 of `a` (replace /slots/hero/children/9/props/text) does not apply"
            ),
            "{error}"
        );
    }

    #[test]
    fn apply_patch_enforces_the_ui_patch_rules() {
        let cases = [
            (
                json!({"op": "move", "path": "/slots/hero", "value": 1}),
                "op must be one of",
            ),
            (
                json!({"op": "add", "path": "/version", "value": 9}),
                "path must start with /slots/",
            ),
            (
                json!({"op": "add", "path": "/slots/hero/props/x"}),
                "a value is required",
            ),
        ];
        for (op, expected) in cases {
            let patch = parse_patch("p", &json!({"slot": "hero", "ops": [op]})).expect("parses");
            let error = apply_patch(&mut testdata::baseline(), &patch, "p").expect_err("fails");
            assert!(error.to_string().contains(expected), "{error}");
        }
    }

    #[test]
    fn tokens_resolve_and_pointers_nest_by_segment() {
        let baseline = testdata::baseline();
        assert_eq!(
            resolve_token(&baseline["tokens"], "$color.primary"),
            Some("#2f6feb")
        );
        assert_eq!(resolve_token(&baseline["tokens"], "$color.nope"), None);
        assert_eq!(resolve_token(&baseline["tokens"], "primary"), None);
        assert!(pointer_within("/slots/hero/children", "/slots/hero"));
        assert!(pointer_within("/slots/hero", "/slots/hero"));
        assert!(!pointer_within("/slots/heroic", "/slots/hero"));
    }
}
