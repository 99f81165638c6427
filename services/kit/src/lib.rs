//! What every Orchestra service shares, so each service crate holds only its
//! own logic:
//!
//! - [`config`]: typed configuration from prefixed environment variables,
//!   every check a setting gets, and start-up errors that name the variable.
//! - [`limits`]: the one message size limit, applied to servers and clients.
//! - [`channel`]: the lazy channel to a peer, its URL checked at start-up.
//! - [`start`]: the one `main` of every service binary (exit 2 on a bad
//!   configuration, naming the variable).
//! - [`server`]: the gRPC server every service runs on, its tower layers
//!   (span, timeout, load shedding, concurrency limit), health checking and
//!   reflection, and the shutdown signal.
//! - [`web`]: what browsers need: the allowed origins (`ORCHESTRA_WEB_*`),
//!   the CORS rules and the built web client's files.
//! - [`background`]: [`Background`], the handle of a service's loops.
//! - [`error`]: [`Violation`] and the `invalid_field` every error enum has.
//! - [`status`]: building `tonic::Status` values with `google.rpc` details.
//! - [`testing`]: starting a service binary with bad settings, for the
//!   start-up tests every service has.
//! - [`time`]: the clock, in epoch microseconds, and protobuf timestamps.
//! - [`seed`]: splitmix64, the one reproducible pseudo-random generator.
//! - [`telemetry`]: logging set-up.

pub mod background;
pub mod channel;
pub mod config;
pub mod error;
pub mod limits;
pub mod seed;
pub mod server;
pub mod start;
pub mod status;
pub mod telemetry;
pub mod testing;
pub mod time;
pub mod web;

pub use background::Background;
pub use error::{InvalidArgument, Violation};
