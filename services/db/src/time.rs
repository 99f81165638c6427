//! Timestamps as microseconds since the Unix epoch: a plain BIGINT on both
//! backends, ordered and exact.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, in epoch microseconds.
pub fn now_micros() -> i64 {
    to_micros(SystemTime::now())
}

/// A system time in epoch microseconds (0 before the epoch).
pub fn to_micros(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Epoch microseconds back to a system time.
pub fn from_micros(micros: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(u64::try_from(micros).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_round_trip() {
        let t = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        assert_eq!(from_micros(to_micros(t)), t);
        assert!(now_micros() > 1_700_000_000_000_000);
    }
}
