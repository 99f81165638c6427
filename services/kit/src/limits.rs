//! The one size limit: how large a message, and so a run input, a form or
//! an artifact carried whole in one message, may be. Every service reads it
//! from its `…_MAX_MESSAGE_BYTES` variable and applies it to its server and
//! to every client channel it opens, both ways; [`crate::server`] turns
//! tonic's raw "message length too large" into a status that names the
//! limit and what to do.

use crate::config::{ConfigError, check_at_least};

/// The default limit: 64 MiB, as the artifact store has always accepted.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// The smallest limit accepted: below it even ordinary templates and
/// review tasks would not fit.
pub const MIN_MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// The largest output an executor sends with its completion instead of
/// staging it in the artifact store first: the executor sends up to this,
/// the scheduler refuses more.
pub const INLINE_OUTPUT_MAX_BYTES: usize = 64 * 1024;

/// Room for a message's other fields (names, keys, a schema) beside
/// content of the full limit, so that content of exactly the limit still
/// travels in one message.
const ENVELOPE_BYTES: usize = 1024 * 1024;

/// The configured limit and the variable that set it, to name in errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageLimit {
    /// The largest content (an input, a form, an artifact) one message may
    /// carry, in bytes.
    pub bytes: usize,
    /// The variable that sets it, such as `ORCHESTRA_SCHEDULER_MAX_MESSAGE_BYTES`.
    pub variable: String,
}

impl MessageLimit {
    /// The limit a service's variable sets.
    pub fn new(bytes: usize, variable: impl Into<String>) -> MessageLimit {
        MessageLimit {
            bytes,
            variable: variable.into(),
        }
    }

    /// The size every server and client channel accepts and sends: the
    /// content limit plus room for the message's other fields.
    pub fn channel_bytes(&self) -> usize {
        self.bytes.saturating_add(ENVELOPE_BYTES)
    }

    /// Whether content of `size` bytes is within the limit.
    pub fn allows(&self, size: usize) -> bool {
        size <= self.bytes
    }

    /// The limit in words, for messages: "67108864 bytes (64 MiB, set by …)".
    pub fn describe(&self) -> String {
        format!(
            "{} bytes ({}, set by {})",
            self.bytes,
            human_bytes(self.bytes),
            self.variable
        )
    }

    /// What a piece of content of `size` bytes above the limit is told.
    pub fn exceeded(&self, what: &str, size: usize) -> String {
        format!(
            "{what} is {size} bytes ({}), above the limit of {}",
            human_bytes(size),
            self.describe()
        )
    }
}

/// Checks a configured limit: at least [`MIN_MAX_MESSAGE_BYTES`].
pub fn check(variable: &str, bytes: usize) -> Result<(), ConfigError> {
    check_at_least(
        variable,
        u64::try_from(bytes).unwrap_or(u64::MAX),
        MIN_MAX_MESSAGE_BYTES as u64,
        "1 MiB; the default is 67108864, 64 MiB",
    )
}

/// A size in the largest binary unit that keeps it at or above 1.
pub fn human_bytes(size: usize) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if size < 1024 {
        return format!("{size} B");
    }
    let mut value = size as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_plainly() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(64 * 1024 * 1024), "64 MiB");
        assert_eq!(human_bytes(5_242_932), "5.0 MiB");
    }

    #[test]
    fn a_message_has_room_beside_full_content() {
        let limit = MessageLimit::new(DEFAULT_MAX_MESSAGE_BYTES, "X_MAX_MESSAGE_BYTES");
        assert!(limit.channel_bytes() > limit.bytes);
        assert!(limit.allows(limit.bytes));
        assert!(!limit.allows(limit.bytes + 1));
        assert_eq!(
            limit.exceeded("input `blob`", 70 * 1024 * 1024),
            "input `blob` is 73400320 bytes (70 MiB), above the limit of \
             67108864 bytes (64 MiB, set by X_MAX_MESSAGE_BYTES)"
        );
    }

    #[test]
    fn a_tiny_limit_is_refused() {
        check("V", DEFAULT_MAX_MESSAGE_BYTES).expect("default");
        let err = check("V", 0).expect_err("zero");
        assert!(err.problem.contains("at least 1048576"), "{}", err.problem);
    }
}
