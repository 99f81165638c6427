//! Durations as templates write them: `500ms`, `30s`, `2m`, `1h`.

use std::time::Duration;

/// Why a duration's text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a duration; write a whole number followed by ms, s, m or h, e.g. 30s")]
pub struct DurationError {
    /// The text that was given.
    pub text: String,
}

/// Parses a whole number followed by one unit (`ms`, `s`, `m`, `h`).
///
/// One unit only keeps templates easy to read and diff; `90s` covers `1m30s`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let error = || DurationError {
        text: text.to_owned(),
    };
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(error)?;
    let (number, unit) = trimmed.split_at(digits_end);
    let number: u64 = number.parse().map_err(|_| error())?;
    let millis_per_unit = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(error()),
    };
    number
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn refuses_anything_else() {
        for text in ["", "30", "s", "1.5s", "-1s", "1d", "1m30s", "ten s"] {
            assert!(parse_duration(text).is_err(), "{text}");
        }
    }
}
