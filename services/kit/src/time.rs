//! Time as Orchestra keeps it: microseconds since the Unix epoch (a plain
//! BIGINT on both database backends, ordered and exact), and the protobuf
//! timestamps it travels as. The one clock every crate reads.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use orchestra_proto::Timestamp;

/// Now, in epoch microseconds.
pub fn now_micros() -> i64 {
    to_micros(SystemTime::now())
}

/// A system time in epoch microseconds (0 before the epoch).
pub fn to_micros(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Epoch microseconds back to a system time.
pub fn from_micros(micros: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(u64::try_from(micros).unwrap_or(0))
}

/// A protobuf timestamp for epoch microseconds; `None` for 0 (never).
pub fn timestamp(micros: i64) -> Option<Timestamp> {
    (micros != 0).then(|| Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: i32::try_from(micros.rem_euclid(1_000_000) * 1_000).unwrap_or(0),
    })
}

/// A timestamp as RFC 3339 text, as the proto3 JSON mapping writes it.
pub fn rfc3339(timestamp: &Timestamp) -> String {
    serde_json::to_value(timestamp)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Epoch microseconds of a protobuf timestamp; 0 for none.
pub fn micros(timestamp: Option<&Timestamp>) -> i64 {
    timestamp.map_or(0, |t| t.seconds * 1_000_000 + i64::from(t.nanos) / 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = timestamp(1_700_000_000_123_456).expect("set");
        assert_eq!(t.seconds, 1_700_000_000);
        assert_eq!(t.nanos, 123_456_000);
        assert_eq!(micros(Some(&t)), 1_700_000_000_123_456);
        assert_eq!(timestamp(0), None);
        assert_eq!(rfc3339(&t), "2023-11-14T22:13:20.123456+00:00");
    }

    #[test]
    fn micros_round_trip() {
        let t = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        assert_eq!(from_micros(to_micros(t)), t);
        assert!(now_micros() > 1_700_000_000_000_000);
    }
}
