//! The phase executor: runs the work of `llm` and `function` phases.
//!
//! Module map:
//! - [`functions`]: the built-in, deterministic functions a `function` phase
//!   names (`patch.diff`, `patch.merge`, `rubric.evaluate`, `ui.preview`, JSON
//!   transforms), looked up through [`functions::registry`].
//! - [`prompt`]: renders an `llm` phase's minijinja prompt over its inputs.
//! - [`providers`]: the [`providers::Provider`] trait every LLM backend
//!   implements, the retryable/permanent [`providers::ProviderError`], and the
//!   offline provider that lets examples run with no key and no network.
//!
//! All are pure of any service wiring, so the lease client can drive them and
//! tests can call them directly.

pub mod functions;
pub mod prompt;
pub mod providers;
