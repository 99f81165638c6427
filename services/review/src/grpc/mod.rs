//! The gRPC layer: one handler per proto service, each unpacking requests,
//! calling the [`crate::Review`] actions and packing their answers; errors
//! become statuses in `error.rs`.
//!
//! - [`review_svc`]: `orchestra.v1.ReviewService`.

pub mod review_svc;

pub use review_svc::ReviewSvc;
