//! Orchestra's gRPC contracts, generated from `proto/orchestra/v1/*.proto`.
//!
//! Every service and client crate depends on this one crate, so each message
//! type exists once. Nothing generated is committed: `build.rs` compiles the
//! protos on every build.

/// Version 1 of the contracts: messages, clients (`*_client`) and servers (`*_server`).
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("orchestra.v1");
    include!(concat!(env!("OUT_DIR"), "/orchestra.v1.serde.rs"));
}

/// The encoded `FileDescriptorSet` of every contract, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/orchestra_descriptor.bin"));

/// The timestamp type of every message (with serde support).
pub use pbjson_types::Timestamp;
