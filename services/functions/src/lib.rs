//! The function registry: what a `function` phase calls. The executor
//! builds one registry from the sets of functions it is given (the generic
//! ones here, and an example domain's from its own crate, such as
//! `orchestra-backtrack`) and looks a phase's `function:` up in it.
//!
//! A function takes the phase's resolved inputs (input name → artifact JSON,
//! named as in the template's `inputs:` map) and its `params:`, and returns one
//! JSON value, the phase's output artifact. Functions are deterministic and do
//! no IO, so a retry or a replay gives the same bytes.
//!
//! - [`json`]: `json.pick`, `json.merge`, the generic functions every
//!   executor has.

use serde_json::{Map, Value};

pub mod json;

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

/// A set of functions, sorted by name, with no name twice.
#[derive(Debug, Clone)]
pub struct FunctionRegistry {
    functions: Vec<FunctionSpec>,
}

impl FunctionRegistry {
    /// A registry of every function of the given sets. A name given twice
    /// is a programming error, caught by each registry's tests.
    pub fn new(sets: &[&[FunctionSpec]]) -> FunctionRegistry {
        let mut functions: Vec<FunctionSpec> =
            sets.iter().flat_map(|set| set.iter().copied()).collect();
        functions.sort_by_key(|spec| spec.name);
        FunctionRegistry { functions }
    }

    /// Returns the names of all functions, sorted; template validation uses
    /// this to reject unknown `function:` fields.
    pub fn names(&self) -> Vec<&'static str> {
        self.functions.iter().map(|spec| spec.name).collect()
    }

    /// Returns the function called `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<&FunctionSpec> {
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

/// The generic functions every executor has.
pub static JSON_FUNCTIONS: &[FunctionSpec] = &[
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
];

#[cfg(test)]
pub(crate) mod testdata {
    //! Inputs shared by the function tests: the Backtrack example's context.

    use serde_json::{Map, Value};

    pub fn context() -> Value {
        serde_json::from_str(include_str!(
            "../../../examples/backtrack/inputs/context.json"
        ))
        .expect("example file is JSON")
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
        let registry = FunctionRegistry::new(&[JSON_FUNCTIONS]);
        let names = registry.names();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        assert_eq!(names, ["json.merge", "json.pick"]);
        for name in names {
            assert_eq!(registry.get(name).map(|spec| spec.name), Some(name));
        }
        assert!(registry.get("json.nope").is_none());
    }

    #[test]
    fn calling_an_unknown_function_names_it() {
        let inputs = Map::new();
        let params = json!(null);
        let error = FunctionRegistry::new(&[JSON_FUNCTIONS])
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
}
