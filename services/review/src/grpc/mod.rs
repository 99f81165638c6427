//! The gRPC layer: one handler per proto service, each unpacking requests,
//! calling the [`crate::Review`] actions and packing their answers; errors
//! become statuses in `error.rs`.
//!
//! - `orchestra.v1.ReviewService`: [`review_svc`].

pub mod review_svc;

pub use review_svc::ReviewSvc;
