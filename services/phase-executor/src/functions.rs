//! The functions this executor runs for `function` phases: the generic ones
//! of `orchestra-functions` and the Backtrack example's, in one registry.
//! The scheduler validates templates against the model's list of built-in
//! functions, so the two must agree (a test below holds them together).

use std::sync::LazyLock;

pub use orchestra_functions::{
    FunctionCall, FunctionError, FunctionFn, FunctionRegistry, FunctionSpec,
};

static REGISTRY: LazyLock<FunctionRegistry> = LazyLock::new(|| {
    FunctionRegistry::new(&[
        orchestra_functions::JSON_FUNCTIONS,
        orchestra_backtrack::FUNCTIONS,
    ])
});

/// Returns the registry of built-in functions.
pub fn registry() -> &'static FunctionRegistry {
    &REGISTRY
}

#[cfg(test)]
mod tests {
    /// The scheduler validates templates against the model's list of
    /// built-in functions; it must be exactly what this registry runs.
    #[test]
    fn the_registry_matches_the_model_catalog() {
        assert_eq!(
            super::registry().names(),
            orchestra_model::BUILTIN_FUNCTIONS
        );
    }
}
