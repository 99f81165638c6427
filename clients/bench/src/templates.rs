//! The benchmark's templates, generated: every phase a no-op `json.merge`
//! function, so what is measured is the orchestrator, not the work.

use serde_json::{Value, json};

/// A chain `p1 → p2 → … → pN`.
pub fn chain(name: &str, len: usize) -> String {
    let phases = (1..=len).map(|i| {
        let needs: Vec<String> = if i == 1 {
            vec![]
        } else {
            vec![format!("p{}", i - 1)]
        };
        phase(&format!("p{i}"), &needs)
    });
    template(name, phases)
}

/// The diamond `a → (b, c) → d → e`.
pub fn diamond(name: &str) -> String {
    let phases = [
        phase("a", &[]),
        phase("b", &["a".into()]),
        phase("c", &["a".into()]),
        phase("d", &["b".into(), "c".into()]),
        phase("e", &["d".into()]),
    ];
    template(name, phases)
}

/// One root, `children` phases that need it, and a join that needs them all.
pub fn fanout(name: &str, children: usize) -> String {
    let root = std::iter::once(phase("root", &[]));
    let kids = (1..=children).map(|i| phase(&format!("c{i}"), &["root".into()]));
    let all: Vec<String> = (1..=children).map(|i| format!("c{i}")).collect();
    let join = std::iter::once(phase("join", &all));
    template(name, root.chain(kids).chain(join))
}

/// How many phases a template generated here has.
pub fn phase_count(source: &str) -> usize {
    serde_json::from_str::<Value>(source)
        .ok()
        .and_then(|t| t["phases"].as_array().map(Vec::len))
        .unwrap_or(0)
}

fn phase(id: &str, needs: &[String]) -> Value {
    json!({ "id": id, "kind": "function", "function": "json.merge", "needs": needs })
}

fn template(name: &str, phases: impl IntoIterator<Item = Value>) -> String {
    json!({ "name": name, "phases": phases.into_iter().collect::<Vec<_>>() }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_have_the_phases_they_say() {
        assert_eq!(phase_count(&chain("c", 100)), 100);
        assert_eq!(phase_count(&diamond("d")), 5);
        assert_eq!(phase_count(&fanout("f", 10)), 12);
        let fan: Value = serde_json::from_str(&fanout("f", 3)).expect("json");
        assert_eq!(fan["phases"][4]["needs"], json!(["c1", "c2", "c3"]));
    }
}
