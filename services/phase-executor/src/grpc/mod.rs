//! The gRPC layer: one handler per proto service.
//!
//! - [`provider_svc`]: `orchestra.v1.ProviderService`, listing the providers.

pub mod provider_svc;

pub use provider_svc::ProviderSvc;
