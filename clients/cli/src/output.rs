//! Printing: JSON documents and lines, tables, and the short forms of enum
//! names, times, durations and artifact references that every command uses.
//!
//! Everything written to standard output goes through [`outln!`],
//! [`write_out`] or the JSON printers, which return the write's error
//! instead of panicking as `println!` does, so a closed pipe (`| head`) ends
//! a command quietly (see `Error::is_closed_output`).

use std::io::Write;

use comfy_table::{ContentArrangement, Table, presets};
use orchestra_proto::Timestamp;
use orchestra_proto::v1 as pb;
use serde::Serialize;

use crate::error::Result;

/// Writes one line to standard output, like `println!`, but returns the
/// write's error (a closed pipe) instead of panicking.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write_line(format_args!($($arg)*))
    };
}

/// Writes formatted text and a newline to standard output (see [`outln!`]).
pub fn write_line(text: std::fmt::Arguments<'_>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(text)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Writes text to standard output and flushes it, so streamed lines show
/// at once.
pub fn write_out(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Prints one result as a pretty JSON document (the proto3 JSON mapping).
pub fn print_json<T: Serialize>(value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    Ok(())
}

/// Prints one item of a stream as one line of JSON, flushed at once.
pub fn print_json_line<T: Serialize>(value: &T) -> Result<()> {
    let text = serde_json::to_string(value).map_err(std::io::Error::other)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()?;
    Ok(())
}

/// An artifact version as JSON, its content in the most useful form: the
/// JSON value itself when the content is JSON, `contentText` when it is
/// other text, and `contentBase64` only for binary content.
pub fn artifact_json(artifact: &pb::ArtifactVersion) -> Result<serde_json::Value> {
    let mut value = serde_json::to_value(artifact).map_err(std::io::Error::other)?;
    if let Some(fields) = value.as_object_mut() {
        let base64 = fields.remove("content");
        let content = &artifact.content;
        if let Ok(json) = serde_json::from_slice::<serde_json::Value>(content) {
            fields.insert("content".to_owned(), json);
        } else if let Ok(text) = std::str::from_utf8(content) {
            if !text.is_empty() {
                fields.insert("contentText".to_owned(), text.into());
            }
        } else if let Some(base64) = base64 {
            fields.insert("contentBase64".to_owned(), base64);
        }
    }
    Ok(value)
}

/// A table with a header row, in the style every command shares.
pub fn table<const N: usize>(header: [&str; N]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_HORIZONTAL_ONLY)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header);
    // Piped output has no terminal to measure: wrap at a width that keeps ids whole.
    if table.width().is_none() {
        table.set_width(160);
    }
    table
}

/// Strips an enum value's type prefix: `PHASE_STATE_RUNNING` → `RUNNING`.
fn short(name: &'static str, prefix: &str) -> &'static str {
    name.strip_prefix(prefix).unwrap_or(name)
}

/// A phase state as `RUNNING`.
pub fn phase_state(value: i32) -> &'static str {
    pb::PhaseState::try_from(value).map_or("?", |s| short(s.as_str_name(), "PHASE_STATE_"))
}

/// A run status as `WAITING_FOR_HUMAN`.
pub fn run_status(value: i32) -> &'static str {
    pb::RunStatus::try_from(value).map_or("?", |s| short(s.as_str_name(), "RUN_STATUS_"))
}

/// A phase kind as the template writes it: `human_input`, `llm`.
pub fn phase_kind(value: i32) -> String {
    pb::PhaseKind::try_from(value).map_or("?".to_owned(), |k| {
        short(k.as_str_name(), "PHASE_KIND_").to_ascii_lowercase()
    })
}

/// A human task kind as `input` or `review`.
pub fn task_kind(value: i32) -> String {
    pb::HumanTaskKind::try_from(value).map_or("?".to_owned(), |k| {
        short(k.as_str_name(), "HUMAN_TASK_KIND_").to_ascii_lowercase()
    })
}

/// A human task state as `OPEN`.
pub fn task_state(value: i32) -> &'static str {
    pb::HumanTaskState::try_from(value).map_or("?", |s| short(s.as_str_name(), "HUMAN_TASK_STATE_"))
}

/// A timestamp's time of day in UTC, `HH:MM:SS`.
pub fn clock(timestamp: Option<&Timestamp>) -> String {
    let micros = orchestra_kit::time::micros(timestamp);
    let seconds = micros.div_euclid(1_000_000).rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// A timestamp in RFC 3339, or `-` when unset.
pub fn when(timestamp: Option<&Timestamp>) -> String {
    timestamp.map_or_else(|| "-".to_owned(), orchestra_kit::time::rfc3339)
}

/// A duration in microseconds, short: `850ms`, `1.2s`, `3m05s`, `2h10m`.
pub fn duration(micros: i64) -> String {
    let micros = micros.max(0);
    let millis = micros / 1_000;
    let seconds = micros / 1_000_000;
    if millis < 1_000 {
        format!("{millis}ms")
    } else if seconds < 60 {
        format!("{}.{}s", seconds, (millis % 1_000) / 100)
    } else if seconds < 3_600 {
        format!("{}m{:02}s", seconds / 60, seconds % 60)
    } else {
        format!("{}h{:02}m", seconds / 3_600, seconds / 60 % 60)
    }
}

/// How long ago a timestamp was, coarsely: `12s`, `5m`, `3h`, `2d`.
pub fn age(timestamp: Option<&Timestamp>) -> String {
    if timestamp.is_none() {
        return "-".to_owned();
    }
    let seconds = (orchestra_kit::time::now_micros() - orchestra_kit::time::micros(timestamp))
        .max(0)
        / 1_000_000;
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3_600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3_600),
        s => format!("{}d", s / 86_400),
    }
}

/// An artifact reference as `name@version (id)`, or `-`.
pub fn artifact_ref(artifact: Option<&pb::ArtifactRef>) -> String {
    match artifact {
        Some(r) if !r.artifact_id.is_empty() => {
            format!("{}@{} ({})", r.name, r.version, r.artifact_id)
        }
        _ => "-".to_owned(),
    }
}

/// Content for a person: pretty-printed when it is JSON, as text otherwise.
pub fn readable(content: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(content) {
        Ok(value) => serde_json::to_string_pretty(&value)
            .unwrap_or_else(|_| String::from_utf8_lossy(content).into_owned()),
        Err(_) => String::from_utf8_lossy(content).into_owned(),
    }
}

/// The first `max_lines` lines of `text`, and how many lines were left out.
pub fn head(text: &str, max_lines: usize) -> (String, usize) {
    let total = text.lines().count();
    if total <= max_lines {
        return (text.trim_end().to_owned(), 0);
    }
    let kept: Vec<&str> = text.lines().take(max_lines).collect();
    (kept.join("\n"), total - max_lines)
}

/// A line cut to at most `max_chars` characters, ending in `…` when cut.
pub fn clip(line: &str, max_chars: usize) -> String {
    match line.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line.to_owned(),
    }
}

/// Items joined by `, `, or `-` when there are none.
pub fn list(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_names_are_short() {
        assert_eq!(
            phase_state(pb::PhaseState::WaitingForHuman as i32),
            "WAITING_FOR_HUMAN"
        );
        assert_eq!(run_status(pb::RunStatus::Completed as i32), "COMPLETED");
        assert_eq!(phase_kind(pb::PhaseKind::HumanInput as i32), "human_input");
        assert_eq!(task_kind(pb::HumanTaskKind::Review as i32), "review");
        assert_eq!(phase_state(99), "?");
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(duration(850_000), "850ms");
        assert_eq!(duration(1_234_000), "1.2s");
        assert_eq!(duration(185_000_000), "3m05s");
        assert_eq!(duration(7_800_000_000), "2h10m");
    }

    #[test]
    fn clock_is_utc_time_of_day() {
        let t = Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        };
        assert_eq!(clock(Some(&t)), "22:13:20");
    }

    #[test]
    fn head_counts_what_it_leaves_out() {
        assert_eq!(head("a\nb\nc", 2), ("a\nb".to_owned(), 1));
        assert_eq!(head("a\nb\n", 2), ("a\nb".to_owned(), 0));
    }

    #[test]
    fn long_lines_are_clipped() {
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("ééé", 2), "éé…");
    }

    #[test]
    fn artifact_content_is_json_when_it_is_json() {
        let mut artifact = pb::ArtifactVersion {
            content: br#"{"a":[1,2]}"#.to_vec(),
            content_inlined: true,
            ..Default::default()
        };
        let value = artifact_json(&artifact).expect("json");
        assert_eq!(value["content"], serde_json::json!({"a": [1, 2]}));
        artifact.content = b"<p>hi</p>".to_vec();
        let value = artifact_json(&artifact).expect("json");
        assert_eq!(value["contentText"], "<p>hi</p>");
        assert!(value.get("content").is_none());
        artifact.content = vec![0xff, 0x00];
        let value = artifact_json(&artifact).expect("json");
        assert_eq!(value["contentBase64"], "/wA=");
    }

    #[test]
    fn json_is_pretty_printed() {
        assert_eq!(readable(br#"{"a":1}"#), "{\n  \"a\": 1\n}");
        assert_eq!(readable(b"plain"), "plain");
    }
}
