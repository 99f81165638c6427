//! `json.pick` and `json.merge`: small transforms for wiring artifacts together.

use serde_json::{Map, Value};

use crate::{FunctionCall, FunctionError};

/// `json.pick`: returns the value at JSON pointer `params.path` inside the
/// input named `params.input` (which may be left out when there is exactly
/// one input). A pointer that finds nothing is an error, not `null`, so a
/// misspelt path fails the phase instead of flowing on.
pub fn pick(call: FunctionCall<'_>) -> Result<Value, FunctionError> {
    let path = call
        .params
        .get("path")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            FunctionError::InvalidParams("`path` must be a JSON pointer string".to_owned())
        })?;
    let input = match call.params.get("input") {
        Some(Value::String(name)) => name.as_str(),
        Some(_) => {
            return Err(FunctionError::InvalidParams(
                "`input` must be an input name".to_owned(),
            ));
        }
        None if call.inputs.len() == 1 => call.inputs.keys().next().map_or("", String::as_str),
        None => {
            return Err(FunctionError::InvalidParams(
                "`input` is required when there is not exactly one input".to_owned(),
            ));
        }
    };
    call.input(input)?
        .pointer(path)
        .cloned()
        .ok_or_else(|| FunctionError::invalid_input(input, format!("nothing at `{path}`")))
}

/// `json.merge`: deep-merges every input, in input-name order, into one
/// object: objects merge key by key, anything else is replaced by the later
/// input's value. Every input must be an object.
pub fn merge(call: FunctionCall<'_>) -> Result<Value, FunctionError> {
    let mut merged = Value::Object(Map::new());
    for (name, value) in call.other_inputs(&[]) {
        if !value.is_object() {
            return Err(FunctionError::invalid_input(
                name,
                "json.merge takes objects only",
            ));
        }
        deep_merge(&mut merged, value);
    }
    Ok(merged)
}

fn deep_merge(target: &mut Value, source: &Value) {
    match (target, source) {
        (Value::Object(target), Value::Object(source)) => {
            for (key, value) in source {
                match target.get_mut(key) {
                    Some(existing) => deep_merge(existing, value),
                    None => {
                        target.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (target, source) => *target = source.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testdata::{self, inputs};

    fn call(
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

    #[test]
    fn pick_finds_a_value_in_the_named_or_only_input() {
        let params = json!({"path": "/baseline/tokens/color/primary", "input": "context"});
        let out = call(
            pick,
            &[("context", testdata::context()), ("other", json!(1))],
            params,
        )
        .expect("picks");
        assert_eq!(out, json!("#2f6feb"));
        let out = call(
            pick,
            &[("context", testdata::context())],
            json!({"path": "/target_slot"}),
        )
        .expect("picks");
        assert_eq!(out, json!("hero"));
    }

    #[test]
    fn pick_errors_name_the_problem() {
        let two = [("a", json!({})), ("b", json!({}))];
        let cases = [
            (call(pick, &two, json!({})), "params are invalid: `path`"),
            (
                call(pick, &two, json!({"path": "/x"})),
                "`input` is required",
            ),
            (
                call(pick, &two, json!({"path": "/x", "input": 3})),
                "`input` must be an input name",
            ),
            (
                call(pick, &two, json!({"path": "/x", "input": "c"})),
                "missing input `c`",
            ),
            (
                call(pick, &two, json!({"path": "/x", "input": "a"})),
                "input `a` is invalid: nothing at `/x`",
            ),
        ];
        for (result, expected) in cases {
            let error = result.expect_err("fails");
            assert!(
                error.to_string().contains(expected),
                "{error} should contain {expected}"
            );
        }
    }

    #[test]
    fn merge_is_deep_and_ordered_by_input_name() {
        let out = call(
            merge,
            &[
                ("b", json!({"x": {"keep": 1, "over": "b"}, "list": [2]})),
                (
                    "a",
                    json!({"x": {"over": "a", "only_a": true}, "list": [1, 1]}),
                ),
            ],
            Value::Null,
        )
        .expect("merges");
        assert_eq!(
            out,
            json!({"x": {"keep": 1, "over": "b", "only_a": true}, "list": [2]})
        );
        assert_eq!(call(merge, &[], Value::Null).expect("merges"), json!({}));
    }

    #[test]
    fn merge_rejects_non_objects() {
        let error =
            call(merge, &[("a", json!({})), ("b", json!([1]))], Value::Null).expect_err("fails");
        assert_eq!(
            error.to_string(),
            "input `b` is invalid: json.merge takes objects only"
        );
    }
}
