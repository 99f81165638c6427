//! The gateway's one error type. The gateway changes nothing itself, so its
//! only errors are start-up faults; a call it cannot forward is answered
//! with a gRPC status in [`crate::forward`], never with an error.

use orchestra_kit::config::ConfigError;

/// Why the gateway could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting cannot be used; start-up stops naming its variable.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The gRPC server failed.
    #[error("grpc server failed: {0}")]
    Server(#[from] tonic::transport::Error),
}

/// The gateway's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
