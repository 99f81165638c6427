//! Diffs between two versions: RFC 6902 operations when both are JSON, and
//! a unified text diff (of the pretty-printed JSON, or of the raw text).

use orchestra_proto::v1::JsonPatchOperation;
use serde_json::Value;
use similar::TextDiff;

/// One side of a diff.
pub(crate) struct Side<'a> {
    /// The header line of this side in the unified diff.
    pub label: String,
    pub media_type: &'a str,
    pub content: &'a [u8],
}

/// The JSON operations (empty unless both sides are JSON) and the unified
/// diff turning `left` into `right`.
pub(crate) fn diff(left: &Side<'_>, right: &Side<'_>) -> (Vec<JsonPatchOperation>, String) {
    match (as_json(left), as_json(right)) {
        (Some(l), Some(r)) => {
            let operations = json_patch::diff(&l, &r).iter().map(operation).collect();
            let unified = unified(left, right, &pretty(&l), &pretty(&r));
            (operations, unified)
        }
        _ => {
            let (l, r) = (
                String::from_utf8_lossy(left.content),
                String::from_utf8_lossy(right.content),
            );
            (Vec::new(), unified(left, right, &l, &r))
        }
    }
}

/// The content as JSON when its media type says it is JSON and it parses.
fn as_json(side: &Side<'_>) -> Option<Value> {
    let essence = side.media_type.split(';').next().unwrap_or("").trim();
    let is_json = essence.eq_ignore_ascii_case("application/json") || essence.ends_with("+json");
    is_json
        .then(|| serde_json::from_slice(side.content).ok())
        .flatten()
}

fn pretty(value: &Value) -> String {
    // Serializing a Value cannot fail; the fallback is never used.
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

fn unified(left: &Side<'_>, right: &Side<'_>, l: &str, r: &str) -> String {
    TextDiff::from_lines(l, r)
        .unified_diff()
        .context_radius(3)
        .header(&left.label, &right.label)
        .to_string()
}

/// One json-patch operation in its wire form: read through its serde form,
/// which is RFC 6902's own.
fn operation(op: &json_patch::PatchOperation) -> JsonPatchOperation {
    let value = serde_json::to_value(op).unwrap_or(Value::Null);
    let text = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    JsonPatchOperation {
        op: text("op"),
        path: text("path"),
        from: text("from"),
        value_json: value.get("value").map(Value::to_string).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side<'a>(label: &str, media_type: &'a str, content: &'a [u8]) -> Side<'a> {
        Side {
            label: label.to_owned(),
            media_type,
            content,
        }
    }

    #[test]
    fn json_sides_give_operations_and_a_pretty_diff() {
        let left = side("a@v1", "application/json", br#"{"title":"Old","n":1}"#);
        let right = side(
            "a@v2",
            "application/json; charset=utf-8",
            br#"{"title":"New","n":1}"#,
        );
        let (ops, unified) = diff(&left, &right);
        assert_eq!(
            ops,
            vec![JsonPatchOperation {
                op: "replace".into(),
                path: "/title".into(),
                from: String::new(),
                value_json: "\"New\"".into(),
            }]
        );
        assert!(unified.contains("--- a@v1\n+++ a@v2\n"), "{unified}");
        assert!(unified.contains("-  \"title\": \"Old\""), "{unified}");
        assert!(unified.contains("+  \"title\": \"New\""), "{unified}");
    }

    #[test]
    fn text_sides_give_only_a_text_diff() {
        let left = side("l", "text/plain", b"one\ntwo\n");
        let right = side("r", "application/json", b"[1]");
        let (ops, unified) = diff(&left, &right);
        assert!(ops.is_empty());
        assert!(unified.contains("-one\n-two\n+[1]"), "{unified}");
    }

    #[test]
    fn removals_have_no_value() {
        let left = side("l", "application/json", br#"{"a":1,"b":2}"#);
        let right = side("r", "application/json", br#"{"a":1}"#);
        let (ops, _) = diff(&left, &right);
        assert_eq!(ops.len(), 1);
        assert_eq!((ops[0].op.as_str(), ops[0].path.as_str()), ("remove", "/b"));
        assert_eq!(ops[0].value_json, "");
    }
}
