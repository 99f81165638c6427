//! Timestamps as microseconds since the Unix epoch: a plain BIGINT on both
//! backends, ordered and exact. The functions are `orchestra_kit::time`'s,
//! named here too so storage code reads its clock from its storage crate.

pub use orchestra_kit::time::{from_micros, now_micros, to_micros};
