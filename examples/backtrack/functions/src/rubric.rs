//! `rubric.evaluate`: scores candidate UI patches against the context's rubric.
//!
//! Each criterion has a machine check (see `examples/backtrack/schemas/context.json`)
//! and a weight; a candidate's score is the weight of the checks it passes over
//! the total weight, so the reviewer sees both a number and the reasons.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use orchestra_functions::{FunctionCall, FunctionError};

use crate::ui::{
    UiPatch, apply_patch, parse_patch, pointer_within, resolve_token, target_slot, ui_document,
};

/// One rubric criterion as the context form writes it.
#[derive(Debug, Clone, Deserialize)]
struct Criterion {
    id: String,
    check: Check,
    #[serde(default = "default_weight")]
    weight: f64,
}

fn default_weight() -> f64 {
    1.0
}

/// The machine-checkable part of a criterion.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Check {
    MaxOps { value: usize },
    TokensOnly,
    TouchesOnlySlot,
    RequiresComponent { component: String },
    MaxTextLength { value: usize },
}

/// What the checks know besides the patch: the baseline and target slot,
/// present when the `rubric` input is a whole context.
struct Scene<'a> {
    baseline: Option<&'a Value>,
    target_slot: Option<&'a str>,
}

/// `rubric.evaluate`: input `rubric` is the rubric array or a context holding
/// one; every other input is a candidate patch, scored independently.
///
/// Returns `{<input name>: {score, checks: [{id, passed, detail}]}}`, with the
/// score in 0..=1 rounded to three decimals. Passing a context rather than the
/// bare array lets `requires_component` look at the patched slot and
/// `tokens_only` catch references to tokens that do not exist.
pub fn evaluate(call: FunctionCall<'_>) -> Result<Value, FunctionError> {
    let rubric_input = call.input("rubric")?;
    let (criteria, scene) = match rubric_input {
        Value::Array(_) => (
            rubric_input,
            Scene {
                baseline: None,
                target_slot: None,
            },
        ),
        Value::Object(object) if object.get("rubric").is_some_and(Value::is_array) => (
            &object["rubric"],
            Scene {
                baseline: ui_document("rubric", rubric_input).ok(),
                target_slot: target_slot(rubric_input),
            },
        ),
        _ => {
            return Err(FunctionError::invalid_input(
                "rubric",
                "expected a rubric array or a context with a `rubric` array",
            ));
        }
    };
    let criteria: Vec<Criterion> = Vec::deserialize(criteria).map_err(|error| {
        FunctionError::invalid_input("rubric", format!("not a rubric: {error}"))
    })?;
    if let Some(bad) = criteria
        .iter()
        .find(|criterion| criterion.weight.is_nan() || criterion.weight < 0.0)
    {
        return Err(FunctionError::invalid_input(
            "rubric",
            format!("criterion `{}` has a negative weight", bad.id),
        ));
    }

    let mut scores = Map::new();
    for (name, value) in call.other_inputs(&["rubric"]) {
        let patch = parse_patch(name, value)?;
        scores.insert(name.to_owned(), score(&criteria, &scene, &patch));
    }
    Ok(Value::Object(scores))
}

fn score(criteria: &[Criterion], scene: &Scene<'_>, patch: &UiPatch) -> Value {
    let mut checks = Vec::with_capacity(criteria.len());
    let (mut earned, mut total) = (0.0, 0.0);
    for criterion in criteria {
        let (passed, detail) = run_check(&criterion.check, scene, patch);
        total += criterion.weight;
        if passed {
            earned += criterion.weight;
        }
        checks.push(json!({ "id": criterion.id, "passed": passed, "detail": detail }));
    }
    // An empty or weightless rubric has nothing to fail.
    let ratio = if total > 0.0 { earned / total } else { 1.0 };
    json!({ "score": (ratio * 1000.0).round() / 1000.0, "checks": checks })
}

fn run_check(check: &Check, scene: &Scene<'_>, patch: &UiPatch) -> (bool, String) {
    let slot = scene.target_slot.unwrap_or(&patch.slot);
    match check {
        Check::MaxOps { value } => (
            patch.ops.len() <= *value,
            format!("{} ops (at most {value})", patch.ops.len()),
        ),
        Check::TokensOnly => check_tokens(scene, patch),
        Check::TouchesOnlySlot => {
            let prefix = format!("/slots/{slot}");
            let outside: Vec<&str> = patch
                .ops
                .iter()
                .filter(|op| !pointer_within(&op.path, &prefix))
                .map(|op| op.path.as_str())
                .collect();
            if !outside.is_empty() {
                (
                    false,
                    format!("changes outside slot `{slot}`: {}", outside.join(", ")),
                )
            } else if patch.slot != slot {
                (
                    false,
                    format!("patch names slot `{}`, the target is `{slot}`", patch.slot),
                )
            } else {
                (true, format!("every op stays in slot `{slot}`"))
            }
        }
        Check::RequiresComponent { component } => check_component(scene, patch, slot, component),
        Check::MaxTextLength { value } => {
            let too_long: Vec<String> = written_strings(patch)
                .into_iter()
                .filter(|(_, text)| !is_token_reference(text) && text.chars().count() > *value)
                .map(|(index, text)| format!("op {index}: {} chars", text.chars().count()))
                .collect();
            if too_long.is_empty() {
                (true, format!("all new text is at most {value} characters"))
            } else {
                (
                    false,
                    format!("longer than {value} characters: {}", too_long.join(", ")),
                )
            }
        }
    }
}

fn check_tokens(scene: &Scene<'_>, patch: &UiPatch) -> (bool, String) {
    let tokens = scene.baseline.and_then(|baseline| baseline.get("tokens"));
    let mut faults = Vec::new();
    for (index, text) in written_strings(patch) {
        if looks_like_color(text) || looks_like_length(text) {
            faults.push(format!("op {index} writes literal `{text}`"));
        } else if let Some(tokens) = tokens
            && is_token_reference(text)
            && resolve_token(tokens, text).is_none()
        {
            faults.push(format!("op {index} references unknown token `{text}`"));
        }
    }
    if faults.is_empty() {
        (true, "colours and spacing use tokens".to_owned())
    } else {
        (false, faults.join("; "))
    }
}

fn check_component(
    scene: &Scene<'_>,
    patch: &UiPatch,
    slot: &str,
    component: &str,
) -> (bool, String) {
    let Some(baseline) = scene.baseline else {
        // Without the baseline only the patch's own new nodes can be seen.
        let found = patch
            .ops
            .iter()
            .filter_map(|op| op.value.as_ref())
            .any(|value| contains_component(value, component));
        let detail = if found {
            format!("the patch adds a `{component}`")
        } else {
            format!("no baseline to check; the patch adds no `{component}`")
        };
        return (found, detail);
    };
    let mut document = baseline.clone();
    if let Err(error) = apply_patch(&mut document, patch, "candidate") {
        return (false, format!("patch does not apply: {error}"));
    }
    match document.get("slots").and_then(|slots| slots.get(slot)) {
        Some(tree) if contains_component(tree, component) => {
            (true, format!("slot `{slot}` has a `{component}`"))
        }
        Some(_) => (
            false,
            format!("slot `{slot}` has no `{component}` after the patch"),
        ),
        None => (
            false,
            format!("slot `{slot}` does not exist after the patch"),
        ),
    }
}

fn contains_component(value: &Value, component: &str) -> bool {
    match value {
        Value::Object(object) => {
            object.get("component").and_then(Value::as_str) == Some(component)
                || object
                    .values()
                    .any(|child| contains_component(child, component))
        }
        Value::Array(items) => items.iter().any(|item| contains_component(item, component)),
        _ => false,
    }
}

/// Every string the patch writes, with its op index: the values themselves
/// and every string inside values that are nodes or objects.
fn written_strings(patch: &UiPatch) -> Vec<(usize, &str)> {
    fn collect<'a>(index: usize, value: &'a Value, out: &mut Vec<(usize, &'a str)>) {
        match value {
            Value::String(text) => out.push((index, text)),
            Value::Array(items) => items.iter().for_each(|item| collect(index, item, out)),
            Value::Object(object) => object
                .iter()
                // Component kinds are identifiers, not copy or styling.
                .filter(|(key, _)| key.as_str() != "component")
                .for_each(|(_, item)| collect(index, item, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (index, op) in patch.ops.iter().enumerate() {
        if let Some(value) = &op.value {
            collect(index, value, &mut out);
        }
    }
    out
}

/// `$group.name` with lowercase identifier parts, so "$9.99" stays copy.
fn is_token_reference(text: &str) -> bool {
    let Some((group, name)) = text.strip_prefix('$').and_then(|rest| rest.split_once('.')) else {
        return false;
    };
    let identifier = |part: &str| {
        part.chars()
            .next()
            .is_some_and(|first| first.is_ascii_lowercase())
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    identifier(group) && identifier(name)
}

fn looks_like_color(text: &str) -> bool {
    let text = text.trim().to_ascii_lowercase();
    if let Some(hex) = text.strip_prefix('#') {
        return matches!(hex.len(), 3 | 4 | 6 | 8) && hex.chars().all(|c| c.is_ascii_hexdigit());
    }
    ["rgb(", "rgba(", "hsl(", "hsla("]
        .iter()
        .any(|prefix| text.starts_with(prefix))
}

fn looks_like_length(text: &str) -> bool {
    let text = text.trim().to_ascii_lowercase();
    ["px", "rem", "em"].iter().any(|unit| {
        text.strip_suffix(unit).is_some_and(|number| {
            let number = number.strip_prefix('-').unwrap_or(number);
            !number.is_empty() && number.chars().all(|c| c.is_ascii_digit() || c == '.')
        })
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testdata::{self, inputs};

    fn run(pairs: &[(&str, Value)]) -> Result<Value, FunctionError> {
        let inputs = inputs(pairs);
        evaluate(FunctionCall {
            inputs: &inputs,
            params: &Value::Null,
        })
    }

    fn passed(result: &Value, candidate: &str) -> Vec<(String, bool)> {
        result[candidate]["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .map(|check| {
                (
                    check["id"].as_str().unwrap_or_default().to_owned(),
                    check["passed"] == true,
                )
            })
            .collect()
    }

    #[test]
    fn scores_the_example_variants_against_the_context() {
        let out = run(&[
            ("rubric", testdata::context()),
            ("a", testdata::variant_a()),
            ("b", testdata::variant_b()),
        ])
        .expect("scores");
        assert_eq!(out["a"]["score"], 1.0);
        let expected_a: Vec<(String, bool)> = [
            "small_change",
            "uses_tokens",
            "hero_only",
            "has_cta",
            "short_copy",
        ]
        .iter()
        .map(|id| ((*id).to_owned(), true))
        .collect();
        assert_eq!(passed(&out, "a"), expected_a);
        // b keeps 4 ops (max 6) but fails tokens, slot, button and copy length: 1 of 9.
        assert_eq!(out["b"]["score"], 0.111);
        let b_checks = &out["b"]["checks"];
        assert_eq!(b_checks[1]["detail"], "op 1 writes literal `#ff0000`");
        assert_eq!(
            b_checks[2]["detail"],
            "changes outside slot `hero`: /slots/footer/props/text"
        );
        assert_eq!(
            b_checks[3]["detail"],
            "slot `hero` has no `button` after the patch"
        );
        assert_eq!(
            b_checks[4]["detail"],
            "longer than 60 characters: op 0: 74 chars"
        );
    }

    #[test]
    fn a_bare_rubric_array_checks_what_the_patch_alone_shows() {
        let rubric = testdata::context()["rubric"].clone();
        let out = run(&[("rubric", rubric), ("a", testdata::variant_a())]).expect("scores");
        let checks = passed(&out, "a");
        // Without the baseline, variant a adds no button node itself.
        assert_eq!(checks[3], ("has_cta".to_owned(), false));
        assert_eq!(out["a"]["score"], 0.667);
    }

    #[test]
    fn unknown_tokens_fail_when_the_baseline_is_known() {
        let patch = json!({"slot": "hero", "summary": "x", "ops": [{"op": "replace", "path": "/slots/hero/props/gap", "value": "$space.huge"}]});
        let out = run(&[("rubric", testdata::context()), ("p", patch)]).expect("scores");
        assert_eq!(
            out["p"]["checks"][1]["detail"],
            "op 0 references unknown token `$space.huge`"
        );
    }

    #[test]
    fn a_patch_that_does_not_apply_fails_requires_component() {
        let patch = json!({"slot": "hero", "summary": "x", "ops": [{"op": "remove", "path": "/slots/hero/children/9"}]});
        let out = run(&[("rubric", testdata::context()), ("p", patch)]).expect("scores");
        let detail = out["p"]["checks"][3]["detail"].as_str().expect("detail");
        assert!(detail.starts_with("patch does not apply: op 0"), "{detail}");
    }

    #[test]
    fn rejects_bad_rubrics_and_candidates() {
        let cases = [
            (
                vec![("rubric", json!("x"))],
                "input `rubric` is invalid: expected a rubric array",
            ),
            (
                vec![("rubric", json!([{"id": "x", "check": {"type": "vibes"}}]))],
                "input `rubric` is invalid: not a rubric",
            ),
            (
                vec![(
                    "rubric",
                    json!([{"id": "x", "check": {"type": "tokens_only"}, "weight": -1}]),
                )],
                "negative weight",
            ),
            (
                vec![("rubric", json!([])), ("a", json!({"slot": 1}))],
                "input `a` is invalid: not a ui patch",
            ),
            (vec![], "missing input `rubric`"),
        ];
        for (pairs, expected) in cases {
            let error = run(&pairs).expect_err("fails");
            assert!(
                error.to_string().contains(expected),
                "{error} should contain {expected}"
            );
        }
    }

    #[test]
    fn literal_detection() {
        for literal in ["#fff", "#2F6FEB", "rgb(0,0,0)", "12px", "1.5rem", "-4px"] {
            assert!(
                looks_like_color(literal) || looks_like_length(literal),
                "{literal}"
            );
        }
        for copy in [
            "#1 choice",
            "Start now",
            "px",
            "$color.primary",
            "12 px wide",
        ] {
            assert!(
                !looks_like_color(copy) && !looks_like_length(copy),
                "{copy}"
            );
        }
        assert!(is_token_reference("$color.on_primary"));
        assert!(!is_token_reference("$9.99"));
    }
}
