//! What every Orchestra service shares, so each service crate holds only its
//! own logic:
//!
//! - [`config`]: typed configuration from prefixed environment variables,
//!   with start-up errors that name the variable.
//! - [`server`]: the gRPC server every service runs on, with health checking
//!   and reflection, and the shutdown signal.
//! - [`status`]: building `tonic::Status` values with `google.rpc` details.
//! - [`time`]: protobuf timestamps from the epoch microseconds we store.
//! - [`telemetry`]: logging set-up.

pub mod config;
pub mod server;
pub mod status;
pub mod telemetry;
pub mod time;
