//! `ui.preview`: a small, self-contained HTML page per candidate patch, for the
//! review's preview pane (typically shown in a sandboxed iframe).
//!
//! Every piece of text and every attribute is HTML-escaped, style values are
//! reduced to a safe character set, and image sources must be http(s) or
//! `data:image/`: the patches come from a model and must not script the page.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use orchestra_functions::{FunctionCall, FunctionError};

use crate::ui::{apply_patch, parse_patch, resolve_token, target_slot, ui_document};

/// Nesting deeper than this is cut off, so a hostile tree cannot blow the stack.
const MAX_DEPTH: usize = 32;

/// `ui.preview`: input `base` is a UI document or a context; every other input
/// is a candidate patch. Returns `{<input name>: "<html>"}` rendering the
/// target slot (the context's `target_slot`, else the patch's `slot`) after
/// the patch. A patch that does not apply renders as a page that says why,
/// rather than failing the phase, because the reviewer is the one to judge it.
pub fn preview(call: FunctionCall<'_>) -> Result<Value, FunctionError> {
    let base_input = call.input("base")?;
    let base = ui_document("base", base_input)?;
    let mut pages = Map::new();
    for (name, value) in call.other_inputs(&["base"]) {
        let patch = parse_patch(name, value)?;
        let slot = target_slot(base_input).unwrap_or(&patch.slot);
        let mut document = base.clone();
        let body = match apply_patch(&mut document, &patch, name) {
            Ok(()) => render_slot(&document, slot),
            Err(error) => format!(
                "<p class=\"orchestra-error\">This patch does not apply: {}</p>",
                escape(&error.to_string())
            ),
        };
        pages.insert(
            name.to_owned(),
            Value::String(page(&document, name, &patch.summary, &body)),
        );
    }
    Ok(Value::Object(pages))
}

fn page(document: &Value, name: &str, summary: &str, body: &str) -> String {
    let tokens = document.get("tokens").unwrap_or(&Value::Null);
    let font =
        css_value(tokens, "$font.body").unwrap_or_else(|| "system-ui, sans-serif".to_owned());
    let text = css_value(tokens, "$color.text").unwrap_or_else(|| "#1f2328".to_owned());
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Preview: {name}</title>\
         <style>body{{margin:0;font-family:{font};color:{text}}}\
         .orchestra-summary{{font-size:12px;padding:4px 8px;background:#eee}}\
         .orchestra-error{{color:#b42318;padding:16px}}img{{max-width:100%}}</style></head>\n\
         <body><div class=\"orchestra-summary\">{summary}</div>\n{body}\n</body></html>\n",
        name = escape(name),
        summary = escape(summary),
    )
}

fn render_slot(document: &Value, slot: &str) -> String {
    let tokens = document.get("tokens").unwrap_or(&Value::Null);
    match document.get("slots").and_then(|slots| slots.get(slot)) {
        Some(node) => {
            let mut html = format!("<main data-slot=\"{}\">", escape(slot));
            render_node(node, tokens, 0, &mut html);
            html.push_str("</main>");
            html
        }
        None => format!(
            "<p class=\"orchestra-error\">Slot `{}` does not exist after the patch.</p>",
            escape(slot)
        ),
    }
}

fn render_node(node: &Value, tokens: &Value, depth: usize, html: &mut String) {
    if depth > MAX_DEPTH {
        return;
    }
    let empty = Map::new();
    let props = node
        .get("props")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let prop = |name: &str| props.get(name).map(text_of).unwrap_or_default();
    let mut style = style_of(props, tokens);
    let component = node
        .get("component")
        .and_then(Value::as_str)
        .unwrap_or("stack");
    let (open, close) = match component {
        "heading" => {
            let level = props
                .get("level")
                .and_then(Value::as_u64)
                .unwrap_or(2)
                .clamp(1, 6);
            (
                format!("<h{level} style=\"{style}\">{}", escape(&prop("text"))),
                format!("</h{level}>"),
            )
        }
        "text" => (
            format!("<p style=\"{style}\">{}", escape(&prop("text"))),
            "</p>".to_owned(),
        ),
        "button" => {
            style.push_str(&button_style(&prop("variant"), tokens));
            (
                format!(
                    "<button type=\"button\" style=\"{style}\">{}",
                    escape(&prop("label"))
                ),
                "</button>".to_owned(),
            )
        }
        "image" => {
            let src = prop("src");
            let safe = src.starts_with("https://")
                || src.starts_with("http://")
                || src.starts_with("data:image/");
            let src = if safe { escape(&src) } else { String::new() };
            (
                format!(
                    "<img src=\"{src}\" alt=\"{}\" style=\"{style}\">",
                    escape(&prop("alt"))
                ),
                String::new(),
            )
        }
        "card" => (
            format!(
                "<section style=\"border:1px solid #d0d7de;border-radius:8px;padding:16px;{style}\">"
            ),
            "</section>".to_owned(),
        ),
        // stack, and anything unknown, lays its children out in a flex box.
        _ => {
            let direction = if prop("direction") == "row" {
                "row"
            } else {
                "column"
            };
            (
                format!("<div style=\"display:flex;flex-direction:{direction};{style}\">"),
                "</div>".to_owned(),
            )
        }
    };
    html.push_str(&open);
    for child in node
        .get("children")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        render_node(child, tokens, depth + 1, html);
    }
    html.push_str(&close);
}

/// Maps styling props to CSS declarations, resolving token references.
fn style_of(props: &Map<String, Value>, tokens: &Value) -> String {
    let mut style = String::new();
    for (prop, property) in [
        ("gap", "gap"),
        ("padding", "padding"),
        ("background", "background"),
        ("color", "color"),
        ("font", "font-family"),
    ] {
        if let Some(value) = props
            .get(prop)
            .and_then(|value| css_value(tokens, &text_of(value)))
        {
            let _ = write!(style, "{property}:{value};");
        }
    }
    match props.get("align").map(text_of).as_deref() {
        Some("center") => style.push_str("align-items:center;text-align:center;"),
        Some("end") => style.push_str("align-items:flex-end;text-align:right;"),
        _ => {}
    }
    style
}

fn button_style(variant: &str, tokens: &Value) -> String {
    let primary = css_value(tokens, "$color.primary").unwrap_or_else(|| "#2f6feb".to_owned());
    let on_primary = css_value(tokens, "$color.on_primary").unwrap_or_else(|| "#ffffff".to_owned());
    match variant {
        "primary" => format!(
            "background:{primary};color:{on_primary};border:none;border-radius:6px;padding:10px 18px;font-weight:600;"
        ),
        "link" => format!("background:none;border:none;color:{primary};text-decoration:underline;"),
        _ => format!(
            "background:none;color:{primary};border:1px solid {primary};border-radius:6px;padding:10px 18px;"
        ),
    }
}

/// Resolves a token reference or keeps a literal, then strips every
/// character that could end the declaration or the attribute.
fn css_value(tokens: &Value, raw: &str) -> Option<String> {
    let value = resolve_token(tokens, raw).unwrap_or(raw);
    let safe: String = value
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || " #.,%()-_".contains(*c))
        .collect();
    (!safe.trim().is_empty()).then_some(safe)
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testdata::{self, inputs};

    fn run(pairs: &[(&str, Value)]) -> Result<Value, FunctionError> {
        let inputs = inputs(pairs);
        preview(FunctionCall {
            inputs: &inputs,
            params: &Value::Null,
        })
    }

    #[test]
    fn renders_each_candidate_applied_to_the_target_slot() {
        let out = run(&[
            ("base", testdata::context()),
            ("a", testdata::variant_a()),
            ("b", testdata::variant_b()),
        ])
        .expect("renders");
        let a = out["a"].as_str().expect("html");
        assert!(a.starts_with("<!doctype html>"));
        assert!(a.contains("<main data-slot=\"hero\">"));
        assert!(
            a.contains("<h1 style=\"\">Ship UI changes you can undo</h1>"),
            "{a}"
        );
        assert!(
            a.contains("background:#2f6feb;color:#ffffff;"),
            "the primary button uses the tokens: {a}"
        );
        assert!(a.contains(">Start your free trial</button>"));
        assert!(!a.contains("Sign in"), "only the target slot is rendered");
        let b = out["b"].as_str().expect("html");
        assert!(!b.contains("<button"), "variant b removed the buttons");
        assert!(b.contains("color:#ff0000;"));
    }

    #[test]
    fn escapes_text_attributes_and_styles() {
        let hostile = json!({"slot": "hero", "summary": "<b>hi</b>", "ops": [
            {"op": "replace", "path": "/slots/hero/children/0/props/text", "value": "<script>alert('x')</script>"},
            {"op": "replace", "path": "/slots/hero/children/3/props/src", "value": "javascript:alert(1)"},
            {"op": "replace", "path": "/slots/hero/children/3/props/alt", "value": "\" onerror=\"alert(1)"},
            {"op": "replace", "path": "/slots/hero/props/background", "value": "red;}</style><script>"}
        ]});
        let out = run(&[("base", testdata::baseline()), ("x", hostile)]).expect("renders");
        let html = out["x"].as_str().expect("html");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        assert!(
            html.contains("<img src=\"\" alt=\"&quot; onerror=&quot;alert(1)\""),
            "{html}"
        );
        assert!(html.contains("background:redstylescript;"), "{html}");
        assert!(html.contains("&lt;b&gt;hi&lt;/b&gt;"));
    }

    #[test]
    fn a_patch_that_does_not_apply_renders_the_reason() {
        let broken = json!({"slot": "hero", "summary": "x", "ops": [{"op": "remove", "path": "/slots/hero/children/9"}]});
        let out = run(&[("base", testdata::context()), ("a", broken)]).expect("renders");
        assert!(
            out["a"]
                .as_str()
                .expect("html")
                .contains("This patch does not apply: op 0 of `a`")
        );
    }

    #[test]
    fn requires_a_base_document() {
        assert_eq!(
            run(&[("a", testdata::variant_a())]).expect_err("fails"),
            FunctionError::MissingInput {
                input: "base".into()
            }
        );
        let error = run(&[("base", json!([])), ("a", testdata::variant_a())]).expect_err("fails");
        assert!(error.to_string().starts_with("input `base` is invalid"));
    }
}
