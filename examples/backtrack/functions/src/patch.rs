//! `patch.diff`, `patch.apply` and `patch.merge`: RFC 6902 over UI documents.

use serde_json::{Value, json};
use similar::TextDiff;

use orchestra_functions::{FunctionCall, FunctionError};

use crate::ui::{apply_patch, parse_patch, pointer_within, ui_document};

/// `patch.diff`: inputs `left` and `right`, any JSON.
///
/// Returns `{ops, text, changed_paths}`: the RFC 6902 operations that turn
/// `left` into `right`, a unified diff of the pretty-printed JSON (what a
/// person reads), and the pointers the operations touch (what a UI
/// highlights).
pub fn diff(call: FunctionCall<'_>) -> Result<Value, FunctionError> {
    let left = call.input("left")?;
    let right = call.input("right")?;
    let patch = json_patch::diff(left, right);
    let changed_paths: Vec<String> = patch.iter().map(|op| op.path().to_string()).collect();
    let ops = serde_json::to_value(&patch)
        .map_err(|error| FunctionError::invalid_input("right", error.to_string()))?;
    let (left_text, right_text) = (pretty(left), pretty(right));
    let text = TextDiff::from_lines(left_text.as_str(), right_text.as_str())
        .unified_diff()
        .context_radius(3)
        .header("left", "right")
        .to_string();
    Ok(json!({ "ops": ops, "text": text, "changed_paths": changed_paths }))
}

/// `patch.apply`: inputs `base` (a UI document or a context) and `patch` (a
/// UI patch); returns the patched document. A failing operation is an error
/// naming its index.
pub fn apply(call: FunctionCall<'_>) -> Result<Value, FunctionError> {
    let mut document = ui_document("base", call.input("base")?)?.clone();
    let patch = parse_patch("patch", call.input("patch")?)?;
    apply_patch(&mut document, &patch, "patch")?;
    Ok(document)
}

/// `patch.merge`: makes the next parent version from a review decision.
///
/// Inputs: `base` (a UI document or a context), `decision` (`{decision:
/// "approve", selected: [key, ..]}`) and one input per candidate patch.
/// `params.candidates` maps the decision's keys to those input names, so the
/// review can speak of "a" and "b" while the template wires `variant_a`.
/// Returns the base with each selected patch applied in order, `version`
/// incremented and `applied` listing the keys. Two selected patches that
/// touch the same path (or one inside the other) are a conflict, because
/// applying both would silently keep only the later one.
pub fn merge(call: FunctionCall<'_>) -> Result<Value, FunctionError> {
    let base = ui_document("base", call.input("base")?)?;
    let decision = call.input("decision")?;
    let verdict = decision
        .get("decision")
        .and_then(Value::as_str)
        .ok_or_else(|| FunctionError::invalid_input("decision", "`decision` must be a string"))?;
    if verdict != "approve" {
        return Err(FunctionError::NotApproved(verdict.to_owned()));
    }
    let selected = selected_keys(decision)?;
    let candidates = call
        .params
        .get("candidates")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            FunctionError::InvalidParams(
                "`candidates` must map decision keys to input names".to_owned(),
            )
        })?;

    let mut patches = Vec::with_capacity(selected.len());
    for key in &selected {
        let input_name = candidates
            .get(key.as_str())
            .and_then(Value::as_str)
            .ok_or_else(|| {
                FunctionError::invalid_input(
                    "decision",
                    format!("selects `{key}`, which params.candidates does not map to an input"),
                )
            })?;
        let patch = parse_patch(input_name, call.input(input_name)?)?;
        patches.push((key.as_str(), input_name, patch));
    }

    for (position, (first_key, _, first)) in patches.iter().enumerate() {
        for (second_key, _, second) in &patches[position + 1..] {
            for left in &first.ops {
                for right in &second.ops {
                    if pointer_within(&left.path, &right.path)
                        || pointer_within(&right.path, &left.path)
                    {
                        let path = if left.path.len() <= right.path.len() {
                            &left.path
                        } else {
                            &right.path
                        };
                        return Err(FunctionError::Conflict {
                            first: (*first_key).to_owned(),
                            second: (*second_key).to_owned(),
                            path: path.clone(),
                        });
                    }
                }
            }
        }
    }

    let mut document = base.clone();
    for (_, input_name, patch) in &patches {
        apply_patch(&mut document, patch, input_name)?;
    }
    let version = base.get("version").and_then(Value::as_u64).ok_or_else(|| {
        FunctionError::invalid_input("base", "`version` must be a non-negative integer")
    })?;
    document["version"] = json!(version + 1);
    document["applied"] = json!(selected);
    Ok(document)
}

/// Returns the decision's `selected` keys, without repeats, in order.
fn selected_keys(decision: &Value) -> Result<Vec<String>, FunctionError> {
    let invalid = || {
        FunctionError::invalid_input(
            "decision",
            "`selected` must be a non-empty list of candidate keys",
        )
    };
    let list = decision
        .get("selected")
        .and_then(Value::as_array)
        .ok_or_else(invalid)?;
    let mut keys: Vec<String> = Vec::with_capacity(list.len());
    for item in list {
        let key = item.as_str().ok_or_else(invalid)?;
        if !keys.iter().any(|seen| seen == key) {
            keys.push(key.to_owned());
        }
    }
    if keys.is_empty() {
        return Err(invalid());
    }
    Ok(keys)
}

fn pretty(value: &Value) -> String {
    // Serializing a Value cannot fail; the fallback keeps this total anyway.
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testdata::{self, inputs};

    fn run(
        function: fn(FunctionCall<'_>) -> Result<Value, FunctionError>,
        pairs: &[(&str, Value)],
        params: Value,
    ) -> Result<Value, FunctionError> {
        let inputs = inputs(pairs);
        function(FunctionCall {
            inputs: &inputs,
            params: &params,
        })
    }

    fn merge_params() -> Value {
        json!({ "candidates": { "a": "variant_a", "b": "variant_b" } })
    }

    fn approve(selected: &[&str]) -> Value {
        json!({ "decision": "approve", "selected": selected, "comment": "clearer" })
    }

    #[test]
    fn diff_reports_ops_text_and_paths() {
        let left = testdata::baseline();
        let right = run(
            apply,
            &[("base", left.clone()), ("patch", testdata::variant_a())],
            Value::Null,
        )
        .expect("applies");
        let out = run(diff, &[("left", left), ("right", right)], Value::Null).expect("diffs");
        assert_eq!(
            out["changed_paths"],
            json!([
                "/slots/hero/children/2/children/0/props/label",
                "/slots/hero/children/2/children/0/props/variant"
            ])
        );
        assert_eq!(
            out["ops"][0],
            json!({"op": "replace", "path": "/slots/hero/children/2/children/0/props/label", "value": "Start your free trial"})
        );
        let text = out["text"].as_str().expect("text");
        assert!(text.starts_with("--- left\n+++ right\n@@ "), "{text}");
        let changed: Vec<&str> = text
            .lines()
            .filter(|line| {
                line.starts_with(['-', '+']) && !line.starts_with("---") && !line.starts_with("+++")
            })
            .map(str::trim)
            .collect();
        assert_eq!(changed.len(), 4, "{text}");
        assert!(
            text.lines()
                .any(|line| line.starts_with('-') && line.ends_with("\"label\": \"Learn more\",")),
            "{text}"
        );
        assert!(
            text.lines().any(|line| line.starts_with('+')
                && line.ends_with("\"label\": \"Start your free trial\",")),
            "{text}"
        );
    }

    #[test]
    fn diff_of_equal_values_is_empty_and_missing_inputs_are_named() {
        let out = run(
            diff,
            &[("left", json!({"a": 1})), ("right", json!({"a": 1}))],
            Value::Null,
        )
        .expect("diffs");
        assert_eq!(out, json!({"ops": [], "text": "", "changed_paths": []}));
        let error = run(diff, &[("left", json!(1))], Value::Null).expect_err("fails");
        assert_eq!(
            error,
            FunctionError::MissingInput {
                input: "right".into()
            }
        );
    }

    #[test]
    fn apply_patches_a_document_or_a_context() {
        let from_context = run(
            apply,
            &[
                ("base", testdata::context()),
                ("patch", testdata::variant_a()),
            ],
            Value::Null,
        )
        .expect("applies");
        let from_document = run(
            apply,
            &[
                ("base", testdata::baseline()),
                ("patch", testdata::variant_a()),
            ],
            Value::Null,
        )
        .expect("applies");
        assert_eq!(from_context, from_document);
        assert_eq!(
            from_context["slots"]["hero"]["children"][2]["children"][0]["props"]["label"],
            "Start your free trial"
        );
        assert_eq!(
            from_context["version"], 3,
            "apply alone does not bump the version"
        );
    }

    #[test]
    fn apply_rejects_a_patch_that_is_not_a_patch() {
        let error = run(
            apply,
            &[
                ("base", testdata::baseline()),
                ("patch", json!({"ops": "x"})),
            ],
            Value::Null,
        )
        .expect_err("fails");
        assert!(
            error
                .to_string()
                .starts_with("input `patch` is invalid: not a ui patch"),
            "{error}"
        );
    }

    #[test]
    fn merge_applies_the_selected_variant_and_bumps_the_version() {
        let out = run(
            merge,
            &[
                ("base", testdata::context()),
                ("decision", approve(&["a"])),
                ("variant_a", testdata::variant_a()),
                ("variant_b", testdata::variant_b()),
            ],
            merge_params(),
        )
        .expect("merges");
        assert_eq!(out["version"], 4);
        assert_eq!(out["applied"], json!(["a"]));
        assert_eq!(
            out["slots"]["hero"]["children"][2]["children"][0]["props"]["variant"],
            "primary"
        );
        let validator =
            jsonschema::validator_for(&testdata::parse(testdata::UI_SCHEMA)).expect("compiles");
        assert!(
            validator.is_valid(&out),
            "the merged parent is a valid ui document"
        );
    }

    #[test]
    fn merge_applies_several_disjoint_variants_in_order() {
        let other = json!({"slot": "hero", "summary": "tighter gap", "ops": [{"op": "replace", "path": "/slots/hero/props/gap", "value": "$space.md"}]});
        let out = run(
            merge,
            &[
                ("base", testdata::baseline()),
                ("decision", approve(&["b", "a", "b"])),
                ("variant_a", testdata::variant_a()),
                ("variant_b", other),
            ],
            merge_params(),
        )
        .expect("merges");
        assert_eq!(out["applied"], json!(["b", "a"]));
        assert_eq!(out["slots"]["hero"]["props"]["gap"], "$space.md");
    }

    #[test]
    fn merge_refuses_overlapping_variants_naming_the_path() {
        let error = run(
            merge,
            &[
                ("base", testdata::baseline()),
                ("decision", approve(&["a", "b"])),
                ("variant_a", testdata::variant_a()),
                ("variant_b", testdata::variant_b()),
            ],
            merge_params(),
        )
        .expect_err("fails");
        assert_eq!(
            error,
            FunctionError::Conflict {
                first: "a".into(),
                second: "b".into(),
                path: "/slots/hero/children/2".into()
            }
        );
    }

    #[test]
    fn merge_errors_name_what_is_wrong() {
        let base = ("base", testdata::baseline());
        let a = ("variant_a", testdata::variant_a());
        let cases = [
            (
                vec![
                    base.clone(),
                    ("decision", json!({"decision": "reject", "selected": []})),
                    a.clone(),
                ],
                merge_params(),
                "decision is `reject`",
            ),
            (
                vec![base.clone(), ("decision", approve(&[])), a.clone()],
                merge_params(),
                "`selected` must be a non-empty list",
            ),
            (
                vec![base.clone(), ("decision", approve(&["c"])), a.clone()],
                merge_params(),
                "selects `c`",
            ),
            (
                vec![base.clone(), ("decision", approve(&["a"])), a.clone()],
                json!({}),
                "params are invalid",
            ),
            (
                vec![base.clone(), ("decision", approve(&["b"])), a.clone()],
                merge_params(),
                "missing input `variant_b`",
            ),
            (
                vec![
                    ("base", json!({})),
                    ("decision", approve(&["a"])),
                    a.clone(),
                ],
                merge_params(),
                "input `base` is invalid",
            ),
        ];
        for (pairs, params, expected) in cases {
            let error = run(merge, &pairs, params).expect_err("fails");
            assert!(
                error.to_string().contains(expected),
                "{error} should contain {expected}"
            );
        }
    }

    #[test]
    fn merge_reports_the_failing_op_of_the_candidate() {
        let broken = json!({"slot": "hero", "summary": "bad", "ops": [{"op": "remove", "path": "/slots/hero/children/7"}]});
        let error = run(
            merge,
            &[
                ("base", testdata::baseline()),
                ("decision", approve(&["a"])),
                ("variant_a", broken),
            ],
            merge_params(),
        )
        .expect_err("fails");
        assert!(
            error
                .to_string()
                .starts_with("op 0 of `variant_a` (remove /slots/hero/children/7) does not apply"),
            "{error}"
        );
    }
}
