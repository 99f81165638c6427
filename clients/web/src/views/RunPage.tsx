/**
 * A run's page: a top bar (template, run state, elapsed time, actions,
 * connection), the phases as a live DAG with the run's timeline under it,
 * and a side panel for the selected phase. Everything shown
 * comes from the run store, which `useRunStream` keeps in step with
 * `WatchRun`.
 */
import { Background, Controls, type NodeTypes, ReactFlow, useReactFlow, useStore } from "@xyflow/react";
import { useEffect, useMemo } from "react";

import { useClients } from "../api/clients.js";
import { useRunStore } from "../store/runStore.js";
import { useRunStream } from "../stream/useRunStream.js";
import { layoutPhases, phaseNodes, shapeKey } from "./layout.js";
import { PhaseNode } from "./PhaseNode.js";
import { PhasePanel } from "./PhasePanel.js";
import { RunBar } from "./RunBar.js";
import { Timeline } from "./Timeline.js";

const NODE_TYPES: NodeTypes = { phase: PhaseNode };

/** Nodes are never drawn larger than their natural size, however few. */
const FIT_VIEW = { padding: 0.12, maxZoom: 1, minZoom: 0.1 };

/**
 * Fits the graph to its pane again when the graph's shape or the pane's
 * size changes (the side panel opening narrows it, say).
 */
function FitOnChange({ shape }: { shape: string }) {
  const flow = useReactFlow();
  const width = useStore((s) => s.width);
  const height = useStore((s) => s.height);
  useEffect(() => {
    if (width > 0 && height > 0) void flow.fitView(FIT_VIEW);
  }, [flow, shape, width, height]);
  return null;
}

/** The page of run `runId`. */
export function RunPage({ runId }: { runId: string }) {
  const { runs } = useClients();
  const failure = useRunStream(runs, runId);
  const snapshot = useRunStore((s) => (s.snapshot?.run.id === runId ? s.snapshot : null));
  const selected = useRunStore((s) => s.selectedPhaseId);
  const selectPhase = useRunStore((s) => s.selectPhase);

  const phases = useMemo(() => snapshot?.phases ?? [], [snapshot]);
  const shape = shapeKey(phases);
  // Layout depends only on the graph's shape, not on states changing.
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const layout = useMemo(() => layoutPhases(phases), [shape]);
  const nodes = useMemo(() => phaseNodes(phases, layout.positions, selected), [phases, layout, selected]);

  if (failure) {
    return (
      <div className="page-message" role="alert">
        <h2>This run cannot be shown</h2>
        <p>{failure}</p>
        <a href="#/">Back to the runs</a>
      </div>
    );
  }
  if (!snapshot) {
    return <div className="page-message">Loading run {runId}…</div>;
  }
  return (
    <div className="run-page">
      <RunBar />
      <div className="run-body">
        <div className="run-main">
        <div className="graph" data-testid="graph">
          <ReactFlow
            nodes={nodes}
            edges={layout.edges}
            nodeTypes={NODE_TYPES}
            onNodeClick={(_, node) => selectPhase(node.id)}
            onPaneClick={() => selectPhase(null)}
            nodesConnectable={false}
            fitView
            fitViewOptions={FIT_VIEW}
            minZoom={0.1}
            colorMode="system"
            proOptions={{ hideAttribution: true }}
          >
            <Background />
            <Controls showInteractive={false} />
            <FitOnChange shape={shape} />
          </ReactFlow>
        </div>
        <Timeline />
        </div>
        {selected && <PhasePanel />}
      </div>
    </div>
  );
}
