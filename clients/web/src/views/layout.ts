/**
 * Places a run's phases as a left-to-right DAG with dagre: each phase a
 * node, each `needs` an edge from the needed phase.
 */
import dagre from "@dagrejs/dagre";
import type { Edge, Node } from "@xyflow/react";

import type { Phase } from "../gen/orchestra/v1/run_pb.js";

/** The size every phase node is drawn at. */
export const NODE_WIDTH = 230;
export const NODE_HEIGHT = 104;

/** Node positions and edges for `phases`; recomputed only when the graph's shape changes. */
export function layoutPhases(phases: Phase[]): { positions: Map<string, { x: number; y: number }>; edges: Edge[] } {
  const graph = new dagre.graphlib.Graph();
  graph.setGraph({ rankdir: "LR", nodesep: 28, ranksep: 70, marginx: 16, marginy: 16 });
  graph.setDefaultEdgeLabel(() => ({}));
  const ids = new Set(phases.map((p) => p.id));
  for (const phase of phases) graph.setNode(phase.id, { width: NODE_WIDTH, height: NODE_HEIGHT });
  const edges: Edge[] = [];
  for (const phase of phases) {
    for (const need of phase.needs) {
      if (!ids.has(need)) continue;
      graph.setEdge(need, phase.id);
      edges.push({ id: `${need}->${phase.id}`, source: need, target: phase.id });
    }
  }
  dagre.layout(graph);
  const positions = new Map<string, { x: number; y: number }>();
  for (const phase of phases) {
    const placed = graph.node(phase.id);
    // dagre gives centres; React Flow wants top-left corners.
    positions.set(phase.id, { x: placed.x - NODE_WIDTH / 2, y: placed.y - NODE_HEIGHT / 2 });
  }
  return { positions, edges };
}

/** A key that changes only when phases or their needs change. */
export function shapeKey(phases: Phase[]): string {
  return phases.map((p) => `${p.id}<${p.needs.join(",")}`).join(";");
}

/** A phase's React Flow node. */
export type PhaseFlowNode = Node<{ phase: Phase }>;

/** The node last made for each phase object (phases are replaced, never changed, when they move on). */
const madeNodes = new WeakMap<Phase, PhaseFlowNode>();

/**
 * The React Flow nodes for `phases` at their laid-out positions. A node
 * whose phase, place and selection are unchanged is the same object as
 * last time, so React Flow and the memoized node component skip it: with
 * hundreds of phases, an event redraws only the node it changed.
 */
export function phaseNodes(phases: Phase[], positions: Map<string, { x: number; y: number }>, selected: string | null): PhaseFlowNode[] {
  return phases.map((phase) => {
    const position = positions.get(phase.id) ?? { x: 0, y: 0 };
    const isSelected = phase.id === selected;
    const known = madeNodes.get(phase);
    if (known && known.position === position && known.selected === isSelected) return known;
    const node: PhaseFlowNode = { id: phase.id, type: "phase", position, data: { phase }, selected: isSelected, draggable: false };
    madeNodes.set(phase, node);
    return node;
  });
}
