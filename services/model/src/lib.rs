//! Orchestra's pure domain model: no IO (apart from [`Template::bundle`]
//! reading a template's own files), no gRPC, no database. Every service
//! shares these definitions so that a template, a phase state or a run
//! status means the same thing everywhere.
//!
//! Module map:
//! - [`template`]: the serde model of a workflow template (YAML or JSON),
//!   bundling of referenced files, canonical JSON.
//! - [`mod@validate`]: every check a template must pass before it is stored,
//!   returning all faults with their field paths; [`ValidTemplate`].
//! - [`graph`]: the dependency graph of the phases (order, ancestors,
//!   descendants), loop bodies flattened.
//! - [`phase_state`]: the one table of legal phase state transitions.
//! - [`run_status`]: a run's status, derived from its phase states.
//! - [`phase_tally`]: counts of phases per state, the status without the phases.
//! - [`duration`]: durations as templates write them (`30s`).
//! - [`violation`]: a template fault with its field path.

pub mod duration;
pub mod graph;
pub mod phase_state;
pub mod phase_tally;
pub mod run_status;
pub mod template;
pub mod validate;
pub mod violation;

pub use duration::{DurationError, parse_duration};
pub use graph::Graph;
pub use phase_state::{
    InvalidTransition, PhaseClass, PhaseEvent, PhaseState, TRANSITIONS, UnknownName, transition,
};
pub use phase_tally::PhaseTally;
pub use run_status::RunStatus;
pub use template::{
    Backoff, DurationSpec, FileReader, Format, ModelSpec, OnReject, Output, Phase, PhaseKind,
    PromptRef, RetryPolicy, RunInput, SchemaRef, Selection, Template,
};
pub use validate::{
    BUILTIN_FUNCTIONS, BUILTIN_PROVIDERS, Catalog, ValidTemplate, validate, validate_source,
};
pub use violation::Violation;
