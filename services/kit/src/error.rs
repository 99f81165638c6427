//! What every service's error type is built from, so that the enums agree:
//! one [`Violation`] type for a request's faults, and [`InvalidArgument`],
//! which gives each enum the same `invalid_field`.
//!
//! Each service crate keeps its own `thiserror` enum with the same variants
//! (`InvalidArgument { message, violations }`, `NotFound`, `AlreadyExists`,
//! `FailedPrecondition`, `Unavailable`, `Internal`, `Config`, `Server`; `Db`
//! and `Corrupt` where it stores data, `ResourceExhausted` where it refuses
//! sizes) and maps it to `tonic::Status` once, in its `error.rs`, with
//! [`crate::status`].

/// One fault of a request or a template: the path of the field and what is
/// wrong with it. The model crate's type, shared by every service.
pub use orchestra_model::Violation;

/// A service error that can say a request is malformed. Implementing the
/// one constructor gives every service the same [`InvalidArgument::invalid_field`].
pub trait InvalidArgument: Sized {
    /// The service's INVALID_ARGUMENT error: a summary for the status
    /// message and one violation per faulty field.
    fn invalid_argument(message: String, violations: Vec<Violation>) -> Self;

    /// INVALID_ARGUMENT about one field; the message reads
    /// "`field`: `description`".
    fn invalid_field(field: impl Into<String>, description: impl Into<String>) -> Self {
        let violation = Violation::new(field, description);
        Self::invalid_argument(violation.to_string(), vec![violation])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Invalid(String, Vec<Violation>);

    impl InvalidArgument for Invalid {
        fn invalid_argument(message: String, violations: Vec<Violation>) -> Self {
            Invalid(message, violations)
        }
    }

    #[test]
    fn one_field_names_itself_in_the_message() {
        assert_eq!(
            Invalid::invalid_field("task_id", "is required"),
            Invalid(
                "task_id: is required".to_owned(),
                vec![Violation::new("task_id", "is required")]
            )
        );
    }
}
