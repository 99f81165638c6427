//! The gRPC layer: one handler per proto service.
//!
//! - `orchestra.v1.ProviderService`, listing the providers: [`provider_svc`].

pub mod provider_svc;

pub use provider_svc::ProviderSvc;
