//! A fault in a template or a request, with the path of the field it
//! concerns.

/// One fault in a template: where it is and what to do about it.
///
/// The server returns these as `google.rpc.BadRequest` field violations, so
/// `field` uses the same path syntax (`phases[2].needs[0]`). Every service
/// reports request faults with this type (re-exported by `orchestra-kit`),
/// and the artifact store keeps schema violations as its JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("{field}: {description}")]
pub struct Violation {
    /// The path of the faulty field, e.g. `phases[1].output.schema`, or `source`
    /// when the template could not be read at all.
    pub field: String,
    /// What is wrong and how to fix it.
    pub description: String,
}

impl Violation {
    /// Makes a violation on `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Violation {
            field: field.into(),
            description: description.into(),
        }
    }
}
