/**
 * A run's page: a top bar (template, run state, connection), the phases as
 * a live DAG, and a side panel for the selected phase. Everything shown
 * comes from the run store, which `useRunStream` keeps in step with
 * `WatchRun`.
 */
import { Background, Controls, type NodeTypes, ReactFlow, useReactFlow, useStore } from "@xyflow/react";
import { useEffect, useMemo } from "react";

import type { RunClient } from "../api/clients.js";
import { useRunStore } from "../store/runStore.js";
import { type ConnectionStatus, isRunFinished, timestampMs } from "../store/transitions.js";
import { useRunStream } from "../stream/useRunStream.js";
import { layoutPhases, phaseNodes, shapeKey } from "./layout.js";
import { PhaseNode } from "./PhaseNode.js";
import { PhasePanel } from "./PhasePanel.js";
import { formatDuration, runLook } from "./phaseStyle.js";
import { useNow } from "./useNow.js";

const NODE_TYPES: NodeTypes = { phase: PhaseNode };

/** Nodes are never drawn larger than their natural size, however few. */
const FIT_VIEW = { padding: 0.12, maxZoom: 1 };

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

const CONNECTION_LABELS: Record<ConnectionStatus, string> = {
  connecting: "connecting…",
  open: "live",
  closed: "finished",
  error: "reconnecting…",
};

/** How long the run has taken: ticking while it runs, fixed once it ends. */
function RunElapsed() {
  const run = useRunStore((s) => s.snapshot?.run);
  const finished = run ? isRunFinished(run.status) : true;
  const now = useNow(!finished);
  const created = timestampMs(run?.createdAt);
  if (!run || created === undefined) return null;
  const end = finished ? (timestampMs(run.updatedAt) ?? now) : now;
  return (
    <span className="muted" data-testid="run-elapsed" title="elapsed">
      {formatDuration(end - created)}
    </span>
  );
}

/** The page of run `runId`. */
export function RunPage({ client, runId }: { client: RunClient; runId: string }) {
  const failure = useRunStream(client, runId);
  const snapshot = useRunStore((s) => (s.snapshot?.run.id === runId ? s.snapshot : null));
  const connection = useRunStore((s) => s.connectionStatus);
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
  const run = snapshot.run;
  const look = runLook(run.status);
  return (
    <div className="run-page">
      <header className="run-bar">
        <a href="#/" className="back">
          ← Runs
        </a>
        <h2>
          {run.templateName} <span className="muted">v{run.templateVersion}</span>
        </h2>
        <span className="badge" data-testid="run-status" style={{ background: look.color, color: look.text }}>
          {look.label}
        </span>
        <RunElapsed />
        <span className="muted run-id">{run.id}</span>
        <span className={`connection connection-${connection}`} data-testid="connection">
          {CONNECTION_LABELS[connection]}
        </span>
      </header>
      <div className="run-body">
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
            colorMode="system"
            proOptions={{ hideAttribution: true }}
          >
            <Background />
            <Controls showInteractive={false} />
            <FitOnChange shape={shape} />
          </ReactFlow>
        </div>
        {selected && <PhasePanel />}
      </div>
    </div>
  );
}
