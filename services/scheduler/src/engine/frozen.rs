//! A run's frozen template, parsed once per template version and shared by
//! every change to every run of it: the phases' definitions by position and
//! the graph as positions, so a change never re-reads or re-parses the
//! template, and knows which few phase rows it needs.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use orchestra_model::{Graph, Phase, PhaseKind, Template};

use crate::error::{Error, Result};

/// How many template versions are kept parsed; past it the cache starts
/// over (a version's next change parses it again).
const CAPACITY: usize = 256;

/// One template version, ready for changes to its runs.
pub struct Frozen {
    graph: Graph,
    /// Definitions by position (`phases.idx`): declaration order with loop
    /// bodies flattened, as the graph numbers them.
    specs: Vec<Phase>,
    /// Each definition as the JSON a task carries, serialised once.
    spec_json: Vec<String>,
    needs: Vec<Vec<usize>>,
    children: Vec<Vec<usize>>,
    /// The phases whose outputs each phase's inputs name.
    sources: Vec<Vec<usize>>,
}

impl Frozen {
    /// Indexes a template; `Corrupt` when its graph and its phases disagree.
    pub fn new(template: &Template) -> Result<Frozen> {
        let graph = Graph::new(template);
        let specs: Vec<Phase> = template
            .walk_phases()
            .into_iter()
            .map(|(_, phase)| phase.clone())
            .collect();
        if graph.len() != specs.len() || graph.ids().zip(&specs).any(|(id, p)| id != p.id) {
            return Err(Error::Corrupt(format!(
                "template {}: its graph does not number its phases in declaration order",
                template.name
            )));
        }
        let position = |id: &str| {
            graph
                .index_of(id)
                .ok_or_else(|| Error::Corrupt(format!("template names an unknown phase {id}")))
        };
        let mut needs = Vec::with_capacity(specs.len());
        let mut sources = Vec::with_capacity(specs.len());
        for spec in &specs {
            needs.push(
                graph
                    .needs(&spec.id)
                    .into_iter()
                    .map(position)
                    .collect::<Result<Vec<_>>>()?,
            );
            let mut from = Vec::new();
            for reference in spec.inputs.values() {
                if let Some((source, _)) = reference.split_once('.')
                    && source != "input"
                {
                    from.push(position(source)?);
                }
            }
            sources.push(from);
        }
        let spec_json = specs
            .iter()
            .map(|spec| {
                serde_json::to_string(spec)
                    .map_err(|e| Error::Corrupt(format!("definition of {}: {e}", spec.id)))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut children = vec![Vec::new(); specs.len()];
        for (index, needed) in needs.iter().enumerate() {
            for need in needed {
                children[*need].push(index);
            }
        }
        Ok(Frozen {
            graph,
            specs,
            spec_json,
            needs,
            children,
            sources,
        })
    }

    /// How many phases a run of this template has.
    pub fn len(&self) -> usize {
        self.specs.len()
    }

    /// The position of a phase.
    pub fn index(&self, phase_id: &str) -> Option<usize> {
        self.graph.index_of(phase_id)
    }

    /// A phase's definition.
    pub fn spec(&self, index: usize) -> Option<&Phase> {
        self.specs.get(index)
    }

    /// A phase's definition as JSON, as its tasks carry it.
    pub fn spec_json(&self, index: usize) -> Option<&str> {
        self.spec_json.get(index).map(String::as_str)
    }

    /// The phases a phase waits for.
    pub fn needs(&self, index: usize) -> &[usize] {
        self.needs.get(index).map_or(&[], Vec::as_slice)
    }

    /// The phases that wait for a phase.
    pub fn children(&self, index: usize) -> &[usize] {
        self.children.get(index).map_or(&[], Vec::as_slice)
    }

    /// The phases whose outputs a phase's inputs name.
    pub fn sources(&self, index: usize) -> &[usize] {
        self.sources.get(index).map_or(&[], Vec::as_slice)
    }

    /// The dependency graph, for rewinds (descendants, ancestors).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Every phase a change to one phase can read or move: the phase and the
    /// sources of its inputs (its task carries them), its children (their
    /// needs may become met), the sources of human children (their task is
    /// opened with its inputs) and, through loop blocks, which finish the
    /// moment they are dispatched, their children in turn.
    pub fn reach(&self, index: usize) -> BTreeSet<usize> {
        let mut reach = BTreeSet::from([index]);
        reach.extend(self.sources(index));
        let mut frontier = vec![index];
        while let Some(at) = frontier.pop() {
            for &child in self.children(at) {
                if !reach.insert(child) {
                    continue;
                }
                match self.specs[child].kind {
                    PhaseKind::HumanInput | PhaseKind::HumanReview => {
                        reach.extend(self.sources(child));
                    }
                    PhaseKind::Loop | PhaseKind::Unknown(_) => frontier.push(child),
                    PhaseKind::Llm | PhaseKind::Function => {}
                }
            }
        }
        reach
    }
}

/// Parsed templates by template version id. Cheap to clone.
#[derive(Clone, Default)]
pub struct FrozenCache {
    entries: Arc<Mutex<HashMap<String, Arc<Frozen>>>>,
}

impl FrozenCache {
    /// The cached template of a version, if parsed already.
    pub fn get(&self, template_id: &str) -> Option<Arc<Frozen>> {
        self.lock().get(template_id).cloned()
    }

    /// Parses and keeps a version's template.
    pub fn insert(&self, template_id: &str, spec_json: &str) -> Result<Arc<Frozen>> {
        let template = crate::convert::parse_spec(spec_json)?;
        let frozen = Arc::new(Frozen::new(&template)?);
        let mut entries = self.lock();
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(template_id.to_owned(), frozen.clone());
        Ok(frozen)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Frozen>>> {
        // A panic while holding the lock leaves the map whole: keep using it.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// a → review (a person's, with a's output) → b, and c needing a.
    fn template() -> Template {
        serde_json::from_value(serde_json::json!({
            "name": "t",
            "phases": [
                {"id": "a", "kind": "function", "function": "json.merge", "output": {"name": "out"}},
                {"id": "review", "kind": "human_review", "needs": ["a"],
                 "inputs": {"x": "a.out"}, "candidates": ["x"], "output": {"name": "decision"}},
                {"id": "b", "kind": "function", "function": "json.merge", "needs": ["review"],
                 "inputs": {"x": "a.out", "d": "review.decision"}},
                {"id": "c", "kind": "function", "function": "json.merge", "needs": ["a"]},
            ]
        }))
        .expect("template")
    }

    #[test]
    fn reach_is_the_phase_its_sources_its_children_and_human_childrens_sources() {
        let frozen = Frozen::new(&template()).expect("frozen");
        let ids = |set: BTreeSet<usize>| -> Vec<String> {
            set.into_iter()
                .map(|i| frozen.spec(i).expect("spec").id.clone())
                .collect()
        };
        assert_eq!(ids(frozen.reach(0)), ["a", "review", "c"]);
        // b's task carries a's and review's outputs.
        assert_eq!(ids(frozen.reach(2)), ["a", "review", "b"]);
        assert_eq!(ids(frozen.reach(1)), ["a", "review", "b"]);
        assert_eq!(frozen.children(0), [1, 3]);
        assert_eq!(frozen.needs(2), [1]);
    }

    #[test]
    fn the_cache_parses_a_version_once() {
        let cache = FrozenCache::default();
        let json = serde_json::to_string(&template()).expect("json");
        assert!(cache.get("t-1").is_none());
        let first = cache.insert("t-1", &json).expect("parse");
        let again = cache.get("t-1").expect("cached");
        assert!(Arc::ptr_eq(&first, &again));
        assert!(cache.insert("t-2", "not json").is_err());
    }
}
