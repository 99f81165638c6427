//! The dependency graph of a template's phases.
//!
//! Loop bodies are flattened into the graph, so one set of questions
//! (ancestors, descendants, order) covers every phase:
//! - a body phase with no dependency inside its body starts after the loop's
//!   own `needs`;
//! - the loop phase itself follows the body's last phases, and stands for
//!   "the loop is done" to the phases that need it.
//!
//! The graph of a stored template is acyclic; validation uses
//! [`Graph::find_cycles`] to make sure of it before anything else asks.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

use crate::template::Template;

/// The phases of a template and the edges between them, by index.
///
/// A phase's index is its position in declaration order, loop bodies
/// depth first right after their loop; it is stable for a stored template
/// (seeds and storage use it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    ids: Vec<String>,
    paths: Vec<String>,
    index: HashMap<String, usize>,
    enclosing_loop: Vec<Option<usize>>,
    needs: Vec<Vec<usize>>,
    children: Vec<Vec<usize>>,
}

impl Graph {
    /// Builds the graph of a template. Needs that name no phase, or the
    /// phase itself, are left out; validation reports them.
    pub fn new(template: &Template) -> Graph {
        let walked = template.walk_phases();
        let ids: Vec<String> = walked.iter().map(|(_, phase)| phase.id.clone()).collect();
        let paths: Vec<String> = walked.iter().map(|(path, _)| path.clone()).collect();
        let mut index = HashMap::new();
        for (i, id) in ids.iter().enumerate() {
            // The first declaration wins; duplicates are a violation anyway.
            index.entry(id.clone()).or_insert(i);
        }

        // Which loop (by index) directly encloses each phase.
        let mut enclosing_loop = vec![None; walked.len()];
        for (i, (_, phase)) in walked.iter().enumerate() {
            if phase.body.is_some() {
                let body_prefix = format!("{}.body[", paths[i]);
                for (j, path) in paths.iter().enumerate() {
                    let direct_child = path
                        .strip_prefix(&body_prefix)
                        .is_some_and(|rest| !rest.contains('['));
                    if direct_child {
                        enclosing_loop[j] = Some(i);
                    }
                }
            }
        }

        let explicit: Vec<Vec<usize>> = walked
            .iter()
            .enumerate()
            .map(|(i, (_, phase))| {
                let mut needs: Vec<usize> = phase
                    .needs
                    .iter()
                    .filter_map(|need| index.get(need).copied())
                    .filter(|&need| need != i)
                    .collect();
                needs.dedup();
                needs
            })
            .collect();

        let mut needs = explicit.clone();
        for (i, loop_of) in enclosing_loop.iter().enumerate() {
            let Some(loop_index) = *loop_of else { continue };
            let starts_body = !explicit[i]
                .iter()
                .any(|need| enclosing_loop[*need] == Some(loop_index));
            if starts_body {
                needs[i].extend(explicit[loop_index].iter().copied());
            }
            let ends_body = !explicit
                .iter()
                .enumerate()
                .any(|(j, other)| enclosing_loop[j] == Some(loop_index) && other.contains(&i));
            if ends_body {
                needs[loop_index].push(i);
            }
        }
        for list in &mut needs {
            list.sort_unstable();
            list.dedup();
        }

        let mut children = vec![Vec::new(); ids.len()];
        for (child, list) in needs.iter().enumerate() {
            for &parent in list {
                children[parent].push(child);
            }
        }

        Graph {
            ids,
            paths,
            index,
            enclosing_loop,
            needs,
            children,
        }
    }

    /// Returns the number of phases, loop bodies included.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Says whether the template has no phases.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Returns every phase id in index order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.ids.iter().map(String::as_str)
    }

    /// Returns the stable index of a phase.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// Returns the id of the phase at `index`.
    pub fn id_at(&self, index: usize) -> Option<&str> {
        self.ids.get(index).map(String::as_str)
    }

    /// Returns the field path of a phase in the template (`phases[4].body[0]`).
    pub fn path_of(&self, id: &str) -> Option<&str> {
        self.index_of(id).map(|i| self.paths[i].as_str())
    }

    /// Returns the loop whose body directly holds the phase, if any.
    pub fn enclosing_loop(&self, id: &str) -> Option<&str> {
        let i = self.index_of(id)?;
        self.enclosing_loop[i].map(|l| self.ids[l].as_str())
    }

    /// Returns the phases this one waits for, including those implied by
    /// loops (see the module docs), in index order.
    pub fn needs(&self, id: &str) -> Vec<&str> {
        self.names(self.index_of(id).map(|i| self.needs[i].clone()))
    }

    /// Returns the phases that wait directly for this one, in index order.
    pub fn children(&self, id: &str) -> Vec<&str> {
        self.names(self.index_of(id).map(|i| self.children[i].clone()))
    }

    /// Returns every phase this one waits for, directly or not, in index order.
    pub fn ancestors(&self, id: &str) -> Vec<&str> {
        self.names(self.index_of(id).map(|i| self.reach(i, &self.needs)))
    }

    /// Returns every phase that waits for this one, directly or not, in
    /// index order: what a rewind to this phase resets.
    pub fn descendants(&self, id: &str) -> Vec<&str> {
        self.names(self.index_of(id).map(|i| self.reach(i, &self.children)))
    }

    /// Says whether `ancestor` must finish before `id` may start.
    pub fn is_ancestor(&self, ancestor: &str, id: &str) -> bool {
        match (self.index_of(ancestor), self.index_of(id)) {
            (Some(a), Some(i)) => self.reach(i, &self.needs).contains(&a),
            _ => false,
        }
    }

    /// Returns the phases that need nothing, in index order.
    pub fn roots(&self) -> Vec<&str> {
        (0..self.len())
            .filter(|&i| self.needs[i].is_empty())
            .map(|i| self.ids[i].as_str())
            .collect()
    }

    /// Returns every phase in an order where each comes after all it needs;
    /// among phases free at the same time, the lower index comes first, so
    /// the order is deterministic. Phases on a cycle are left out.
    pub fn topological_order(&self) -> Vec<&str> {
        let mut waiting: Vec<usize> = self.needs.iter().map(Vec::len).collect();
        let mut free: BinaryHeap<Reverse<usize>> = (0..self.len())
            .filter(|&i| waiting[i] == 0)
            .map(Reverse)
            .collect();
        let mut order = Vec::with_capacity(self.len());
        while let Some(Reverse(i)) = free.pop() {
            order.push(self.ids[i].as_str());
            for &child in &self.children[i] {
                waiting[child] -= 1;
                if waiting[child] == 0 {
                    free.push(Reverse(child));
                }
            }
        }
        order
    }

    /// Returns each distinct cycle once, as the ids along it starting and
    /// ending with the same phase, in the direction of dependency
    /// (`a -> b` means b needs a).
    pub fn find_cycles(&self) -> Vec<Vec<&str>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            OnStack,
            Done,
        }
        let mut marks = vec![Mark::New; self.len()];
        let mut cycles: Vec<Vec<usize>> = Vec::new();
        let mut seen: Vec<BTreeSet<usize>> = Vec::new();

        for start in 0..self.len() {
            if marks[start] != Mark::New {
                continue;
            }
            // Iterative depth-first search along `needs`; the stack holds
            // (node, next edge to follow).
            let mut stack = vec![(start, 0usize)];
            marks[start] = Mark::OnStack;
            while let Some((node, edge)) = stack.last().copied() {
                let Some(&next) = self.needs[node].get(edge) else {
                    marks[node] = Mark::Done;
                    stack.pop();
                    continue;
                };
                if let Some(top) = stack.last_mut() {
                    top.1 += 1;
                }
                match marks[next] {
                    Mark::New => {
                        marks[next] = Mark::OnStack;
                        stack.push((next, 0));
                    }
                    Mark::OnStack => {
                        let from = stack.iter().position(|(n, _)| *n == next).unwrap_or(0);
                        // The stack runs child → parent; reverse it so the
                        // path reads in the direction of dependency.
                        let mut cycle: Vec<usize> = stack[from..].iter().map(|(n, _)| *n).collect();
                        cycle.reverse();
                        let members: BTreeSet<usize> = cycle.iter().copied().collect();
                        if !seen.contains(&members) {
                            seen.push(members);
                            cycles.push(cycle);
                        }
                    }
                    Mark::Done => {}
                }
            }
        }

        cycles
            .into_iter()
            .map(|cycle| {
                // Start at the lowest index so the message is stable.
                let lowest = cycle
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, n)| **n)
                    .map_or(0, |(at, _)| at);
                let mut path: Vec<&str> = cycle[lowest..]
                    .iter()
                    .chain(&cycle[..lowest])
                    .map(|&n| self.ids[n].as_str())
                    .collect();
                path.push(path[0]);
                path
            })
            .collect()
    }

    fn reach(&self, from: usize, edges: &[Vec<usize>]) -> Vec<usize> {
        let mut seen = vec![false; self.len()];
        let mut todo = edges[from].clone();
        while let Some(next) = todo.pop() {
            if !seen[next] {
                seen[next] = true;
                todo.extend(edges[next].iter().copied());
            }
        }
        (0..self.len()).filter(|&i| seen[i] && i != from).collect()
    }

    fn names(&self, indices: Option<Vec<usize>>) -> Vec<&str> {
        indices
            .unwrap_or_default()
            .into_iter()
            .map(|i| self.ids[i].as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::Format;

    fn graph(yaml: &str) -> Graph {
        Graph::new(&Template::parse(yaml, Format::Yaml).unwrap())
    }

    #[test]
    fn diamond() {
        let g = graph(
            "name: d\nphases:\n- {id: a}\n- {id: b, needs: [a]}\n- {id: c, needs: [a]}\n- {id: d, needs: [c, b]}\n",
        );
        assert_eq!(g.topological_order(), ["a", "b", "c", "d"]);
        assert_eq!(g.children("a"), ["b", "c"]);
        assert_eq!(g.needs("d"), ["b", "c"]);
        assert_eq!(g.ancestors("d"), ["a", "b", "c"]);
        assert_eq!(g.descendants("b"), ["d"]);
        assert_eq!(g.roots(), ["a"]);
        assert!(g.find_cycles().is_empty());
    }

    #[test]
    fn cycles_are_found_once_and_read_in_dependency_order() {
        let g = graph(
            "name: c\nphases:\n- {id: a, needs: [c]}\n- {id: b, needs: [a]}\n- {id: c, needs: [b]}\n- {id: d}\n",
        );
        assert_eq!(g.find_cycles(), [vec!["a", "b", "c", "a"]]);
        assert_eq!(g.topological_order(), ["d"]);
    }

    #[test]
    fn loop_bodies_sit_between_the_loop_needs_and_the_loop() {
        let g = graph(
            "name: l\nphases:\n- {id: a}\n- id: fix\n  needs: [a]\n  body:\n  - {id: check}\n  - {id: patch, needs: [check]}\n- {id: z, needs: [fix]}\n",
        );
        assert_eq!(
            g.ids().collect::<Vec<_>>(),
            ["a", "fix", "check", "patch", "z"]
        );
        assert_eq!(g.needs("check"), ["a"]);
        assert_eq!(g.needs("fix"), ["a", "patch"]);
        assert_eq!(g.topological_order(), ["a", "check", "patch", "fix", "z"]);
        assert_eq!(g.enclosing_loop("patch"), Some("fix"));
        assert_eq!(g.path_of("patch"), Some("phases[1].body[1]"));
        assert!(g.is_ancestor("patch", "z"));
    }
}
