//! `tonic::Status` values with `google.rpc` details that every language's
//! client can read. Each service maps its own error type to a status in one
//! place; these are the building blocks.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use crate::error::Violation;

/// INVALID_ARGUMENT with a `google.rpc.BadRequest` detail holding one field
/// violation per `(field, description)` pair.
pub fn invalid_argument<F, D>(message: &str, violations: impl IntoIterator<Item = (F, D)>) -> Status
where
    F: Into<String>,
    D: Into<String>,
{
    let violations: Vec<FieldViolation> = violations
        .into_iter()
        .map(|(field, description)| FieldViolation::new(field, description))
        .collect();
    Status::with_error_details(
        Code::InvalidArgument,
        message,
        ErrorDetails::with_bad_request(violations),
    )
}

/// INVALID_ARGUMENT with a `google.rpc.BadRequest` detail holding each
/// violation: how a service's `InvalidArgument` error becomes a status.
pub fn bad_request(message: &str, violations: Vec<Violation>) -> Status {
    invalid_argument(
        message,
        violations.into_iter().map(|v| (v.field, v.description)),
    )
}

/// INVALID_ARGUMENT about one field.
pub fn invalid_field(field: &str, description: &str) -> Status {
    invalid_argument(&format!("{field}: {description}"), [(field, description)])
}

/// The violations of a status's BadRequest detail; empty when it has none.
/// For clients.
pub fn violations(status: &Status) -> Vec<Violation> {
    status
        .get_details_bad_request()
        .map(|bad| {
            bad.field_violations
                .into_iter()
                .map(|v| Violation::new(v.field, v.description))
                .collect()
        })
        .unwrap_or_default()
}

/// [`violations`] as `(field, description)` pairs, which tests compare
/// against literals.
pub fn field_violations(status: &Status) -> Vec<(String, String)> {
    violations(status)
        .into_iter()
        .map(|v| (v.field, v.description))
        .collect()
}

/// UNAVAILABLE while the service's database is away (restarting, or its
/// connections cut): a pause the caller rides out by retrying, never an
/// INTERNAL fault. The cause is logged, not sent.
pub fn database_unavailable(cause: &dyn std::fmt::Display) -> Status {
    tracing::warn!(%cause, "database unavailable");
    Status::unavailable("the database is unavailable; try again in a moment")
}

/// INTERNAL for a fault the caller cannot fix. The cause is logged here with
/// the trace, never sent: database text does not belong to clients.
pub fn internal(cause: &dyn std::fmt::Display) -> Status {
    tracing::error!(%cause, "internal error");
    Status::internal("internal error; the server log has the cause")
}

/// Says whether a peer's answer is a refusal that the same request would
/// get again (the request is wrong, or the thing it names is gone), as
/// opposed to an outage worth retrying. Outboxes give up on these.
pub fn is_permanent(code: Code) -> bool {
    matches!(
        code,
        Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::FailedPrecondition
            | Code::PermissionDenied
            | Code::Unimplemented
            | Code::OutOfRange
    )
}

/// Says whether a peer's failed answer is an outage or a slow peer (down,
/// restarting, timed out, the call cut), after which the same request may
/// succeed: a service passes it on as UNAVAILABLE, never as INTERNAL.
pub fn is_transient(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown
    )
}

/// A peer's status as one line for logs and outbox records.
pub fn describe(status: &Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_permanent_and_outages_are_not() {
        assert!(is_permanent(Code::FailedPrecondition));
        assert!(is_permanent(Code::NotFound));
        assert!(is_permanent(Code::InvalidArgument));
        assert!(!is_permanent(Code::Unavailable));
        assert!(!is_permanent(Code::DeadlineExceeded));
        assert!(!is_permanent(Code::Internal));
        assert!(!is_permanent(Code::ResourceExhausted));
        assert!(is_transient(Code::Unavailable));
        assert!(!is_transient(Code::NotFound));
    }

    #[test]
    fn violations_become_bad_request_details() {
        let status = bad_request("bad", vec![Violation::new("name", "is required")]);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "bad");
        assert_eq!(
            field_violations(&status),
            vec![("name".to_owned(), "is required".to_owned())]
        );
    }

    #[test]
    fn field_violations_round_trip() {
        let status = invalid_argument(
            "bad template",
            [("phases[0].id", "duplicate"), ("name", "empty")],
        );
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            field_violations(&status),
            vec![
                ("phases[0].id".to_owned(), "duplicate".to_owned()),
                ("name".to_owned(), "empty".to_owned())
            ]
        );
    }

    #[test]
    fn internal_hides_the_cause() {
        let status = internal(&"relation \"runs\" does not exist");
        assert!(!status.message().contains("runs"));
    }
}
