//! Built-in functions for `function` phases.
//!
//! A function takes the phase's resolved inputs (input name → artifact JSON,
//! named as in the template's `inputs:` map) and its `params:`, and returns one
//! JSON value, the phase's output artifact. Functions are deterministic and do
//! no IO, so a retry or a replay gives the same bytes.
//!
//! Module map:
//! - [`patch`]: `patch.diff`, `patch.apply`, `patch.merge` (RFC 6902 on UI documents)
//! - [`rubric`]: `rubric.evaluate`, scoring candidate patches against a rubric
//! - [`preview`]: `ui.preview`, HTML renderings of patched slots for review
//! - [`json`]: `json.pick`, `json.merge`
//! - [`ui`]: the UI document helpers the functions above share

use serde_json::{Map, Value};

pub mod json;
pub mod patch;
pub mod preview;
pub mod rubric;
pub mod ui;

/// The arguments of one function call, borrowed from the phase's task.
#[derive(Debug, Clone, Copy)]
pub struct FunctionCall<'a> {
    /// Input name (the key of the template's `inputs:` map) → artifact content.
    pub inputs: &'a Map<String, Value>,
    /// The phase's `params:` value, `Value::Null` when the template gives none.
    pub params: &'a Value,
}

impl<'a> FunctionCall<'a> {
    /// Returns the input called `name`, or an error naming it.
    pub fn input(&self, name: &str) -> Result<&'a Value, FunctionError> {
        self.inputs
            .get(name)
            .ok_or_else(|| FunctionError::MissingInput {
                input: name.to_owned(),
            })
    }

    /// Returns every input except those named in `skip`, in name order; the
    /// candidates of `rubric.evaluate` and `ui.preview` are "everything else".
    pub fn other_inputs(&self, skip: &[&str]) -> Vec<(&'a str, &'a Value)> {
        let mut others: Vec<(&str, &Value)> = self
            .inputs
            .iter()
            .filter(|(name, _)| !skip.contains(&name.as_str()))
            .map(|(name, value)| (name.as_str(), value))
            .collect();
        others.sort_by(|left, right| left.0.cmp(right.0));
        others
    }
}

/// Why a function call failed; every message names the input, param or
/// operation that was wrong, because it is shown to the person fixing the run.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FunctionError {
    /// The template names a function this executor does not have.
    #[error("unknown function `{0}`")]
    UnknownFunction(String),
    /// A required input is absent from the call.
    #[error("missing input `{input}`")]
    MissingInput {
        /// The input name the function expected.
        input: String,
    },
    /// An input is present but has the wrong shape.
    #[error("input `{input}` is invalid: {reason}")]
    InvalidInput {
        /// The offending input name.
        input: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The phase's `params:` are missing a field or have the wrong shape.
    #[error("params are invalid: {0}")]
    InvalidParams(String),
    /// One operation of a patch could not be applied to the document.
    #[error("op {index} of `{input}` ({op} {path}) does not apply: {reason}")]
    OpFailed {
        /// The input holding the patch.
        input: String,
        /// Zero-based index of the operation in the patch's `ops`.
        index: usize,
        /// The operation's kind (`add`, `replace`, `remove`).
        op: String,
        /// The operation's JSON pointer.
        path: String,
        /// Why it failed.
        reason: String,
    },
    /// Two selected candidates change the same place of the document.
    #[error("candidates `{first}` and `{second}` both change `{path}`")]
    Conflict {
        /// The earlier candidate key.
        first: String,
        /// The later candidate key.
        second: String,
        /// The path both touch (or where one touches inside the other).
        path: String,
    },
    /// The review decision does not allow a merge.
    #[error("decision is `{0}`, only `approve` can be merged")]
    NotApproved(String),
}

impl FunctionError {
    /// Builds an [`FunctionError::InvalidInput`].
    pub fn invalid_input(input: &str, reason: impl Into<String>) -> Self {
        Self::InvalidInput {
            input: input.to_owned(),
            reason: reason.into(),
        }
    }
}

/// The signature every built-in function has.
pub type FunctionFn = fn(FunctionCall<'_>) -> Result<Value, FunctionError>;

/// One registered function: its template name, a one-line summary for
/// listings and validation messages, and the code.
#[derive(Debug, Clone, Copy)]
pub struct FunctionSpec {
    /// The name a template's `function:` field uses, such as `patch.merge`.
    pub name: &'static str,
    /// What the function does, in one line.
    pub summary: &'static str,
    /// The implementation.
    pub run: FunctionFn,
}

/// The set of built-in functions, sorted by name.
#[derive(Debug)]
pub struct FunctionRegistry {
    functions: &'static [FunctionSpec],
}

impl FunctionRegistry {
    /// Returns the names of all functions, sorted; template validation uses
    /// this to reject unknown `function:` fields.
    pub fn names(&self) -> Vec<&'static str> {
        self.functions.iter().map(|spec| spec.name).collect()
    }

    /// Returns the function called `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<&'static FunctionSpec> {
        self.functions.iter().find(|spec| spec.name == name)
    }

    /// Looks up `name` and runs it on `call`.
    pub fn call(&self, name: &str, call: FunctionCall<'_>) -> Result<Value, FunctionError> {
        let spec = self
            .get(name)
            .ok_or_else(|| FunctionError::UnknownFunction(name.to_owned()))?;
        (spec.run)(call)
    }
}

// Kept sorted by name so `names()` needs no sorting.
static FUNCTIONS: &[FunctionSpec] = &[
    FunctionSpec {
        name: "json.merge",
        summary: "deep-merges every input object, in input-name order",
        run: json::merge,
    },
    FunctionSpec {
        name: "json.pick",
        summary: "returns the value at params.path inside input params.input",
        run: json::pick,
    },
    FunctionSpec {
        name: "patch.apply",
        summary: "applies the ui patch `patch` to the ui document `base`",
        run: patch::apply,
    },
    FunctionSpec {
        name: "patch.diff",
        summary: "RFC 6902 operations, a unified text diff and changed paths from `left` to `right`",
        run: patch::diff,
    },
    FunctionSpec {
        name: "patch.merge",
        summary: "applies the candidates a review approved to `base`, making the next parent version",
        run: patch::merge,
    },
    FunctionSpec {
        name: "rubric.evaluate",
        summary: "scores every candidate patch against the rubric in `rubric`",
        run: rubric::evaluate,
    },
    FunctionSpec {
        name: "ui.preview",
        summary: "renders every candidate patch applied to `base` as self-contained HTML",
        run: preview::preview,
    },
];

static REGISTRY: FunctionRegistry = FunctionRegistry {
    functions: FUNCTIONS,
};

/// Returns the registry of built-in functions.
pub fn registry() -> &'static FunctionRegistry {
    &REGISTRY
}

#[cfg(test)]
pub(crate) mod testdata {
    //! The Backtrack example files, shared by the function tests.

    use serde_json::{Map, Value, json};

    pub const CONTEXT: &str = include_str!("../../../../examples/backtrack/inputs/context.json");
    pub const UI_SCHEMA: &str = include_str!("../../../../examples/backtrack/schemas/ui.json");
    pub const PATCH_SCHEMA: &str =
        include_str!("../../../../examples/backtrack/schemas/ui-patch.json");
    pub const CONTEXT_SCHEMA: &str =
        include_str!("../../../../examples/backtrack/schemas/context.json");

    pub fn parse(text: &str) -> Value {
        serde_json::from_str(text).expect("example file is JSON")
    }

    pub fn context() -> Value {
        parse(CONTEXT)
    }

    pub fn baseline() -> Value {
        context()["baseline"].clone()
    }

    /// A good variant: makes the first CTA primary with clearer copy.
    pub fn variant_a() -> Value {
        json!({
            "slot": "hero",
            "summary": "Make the first button the primary free-trial CTA",
            "ops": [
                { "op": "replace", "path": "/slots/hero/children/2/children/0/props/label", "value": "Start your free trial" },
                { "op": "replace", "path": "/slots/hero/children/2/children/0/props/variant", "value": "primary" }
            ]
        })
    }

    /// A worse variant: literal colour, long copy, removes the buttons.
    pub fn variant_b() -> Value {
        json!({
            "slot": "hero",
            "summary": "Replace the buttons with a loud subheading",
            "ops": [
                { "op": "replace", "path": "/slots/hero/children/1/props/text", "value": "Start a free trial today and keep every version of your interface, forever" },
                { "op": "add", "path": "/slots/hero/children/1/props/color", "value": "#ff0000" },
                { "op": "remove", "path": "/slots/hero/children/2" },
                { "op": "replace", "path": "/slots/footer/props/text", "value": "© 2025 Backtrack" }
            ]
        })
    }

    pub fn inputs(pairs: &[(&str, Value)]) -> Map<String, Value> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn registry_lists_sorted_names_and_finds_each() {
        let names = registry().names();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        for name in names {
            assert_eq!(registry().get(name).map(|spec| spec.name), Some(name));
        }
        assert!(registry().get("patch.nope").is_none());
    }

    #[test]
    fn calling_an_unknown_function_names_it() {
        let inputs = Map::new();
        let params = json!(null);
        let error = registry()
            .call(
                "nope",
                FunctionCall {
                    inputs: &inputs,
                    params: &params,
                },
            )
            .expect_err("fails");
        assert_eq!(error.to_string(), "unknown function `nope`");
    }

    #[test]
    fn example_files_validate_against_their_schemas() {
        let cases = [
            (testdata::CONTEXT_SCHEMA, testdata::context()),
            (testdata::UI_SCHEMA, testdata::baseline()),
            (testdata::PATCH_SCHEMA, testdata::variant_a()),
            (testdata::PATCH_SCHEMA, testdata::variant_b()),
        ];
        for (schema, instance) in cases {
            let validator =
                jsonschema::validator_for(&testdata::parse(schema)).expect("schema compiles");
            let errors: Vec<String> = validator
                .iter_errors(&instance)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{errors:?}");
        }
    }

    #[test]
    fn context_schema_copies_ui_definitions_verbatim() {
        let ui = testdata::parse(testdata::UI_SCHEMA);
        let context = testdata::parse(testdata::CONTEXT_SCHEMA);
        assert_eq!(context["$defs"]["node"], ui["$defs"]["node"]);
        assert_eq!(context["$defs"]["tokens"], ui["$defs"]["tokens"]);
        assert_eq!(context["$defs"]["ui"]["properties"], ui["properties"]);
        assert_eq!(context["$defs"]["ui"]["required"], ui["required"]);
    }
}

#[cfg(test)]
mod catalog_tests {
    /// The scheduler validates templates against the model's list of
    /// built-in functions; it must be exactly what this registry runs.
    #[test]
    fn the_registry_matches_the_model_catalog() {
        let mut names = super::registry().names();
        names.sort_unstable();
        assert_eq!(names, orchestra_model::BUILTIN_FUNCTIONS);
    }
}
