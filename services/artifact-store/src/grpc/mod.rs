//! The gRPC layer: one handler per proto service, each method forwarding
//! to the store and turning its error into a status through the one
//! mapping in [`crate::error`].
//!
//! - `orchestra.v1.ArtifactService`: [`artifact_svc`].

pub mod artifact_svc;

pub use artifact_svc::{ArtifactSvc, ContentChunks};
