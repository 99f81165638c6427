/**
 * One phase on the graph: its title, kind, state (a coloured badge with the
 * state's word), attempt, elapsed time (ticking while it runs) and, for an
 * llm phase, the provider's label.
 */
import { Handle, type Node, type NodeProps, Position } from "@xyflow/react";
import { memo } from "react";

import { PhaseKind, PhaseState } from "../gen/orchestra/v1/common_pb.js";
import type { Phase } from "../gen/orchestra/v1/run_pb.js";
import { timestampMs } from "../store/transitions.js";
import { formatDuration, kindLabel, phaseLook } from "./phaseStyle.js";
import { useNow } from "./useNow.js";

/** The React Flow node type of a phase. */
export type PhaseNodeType = Node<{ phase: Phase }, "phase">;

function PhaseNodeView({ data, selected }: NodeProps<PhaseNodeType>) {
  const { phase } = data;
  const look = phaseLook(phase.state);
  const running = phase.state === PhaseState.RUNNING;
  const now = useNow(running);
  const started = timestampMs(phase.startedAt);
  const finished = timestampMs(phase.finishedAt);
  const elapsed = started === undefined ? undefined : (finished ?? now) - started;
  return (
    <div
      className={`phase-node${selected ? " selected" : ""}${running ? " running" : ""}`}
      style={{ borderColor: look.color }}
      data-testid={`phase-${phase.id}`}
      data-state={look.label}
    >
      <Handle type="target" position={Position.Left} isConnectable={false} />
      <div className="phase-title" title={phase.id}>
        {phase.title || phase.id}
      </div>
      <div className="phase-meta">
        <span className="phase-kind">{kindLabel(phase.kind)}</span>
        {phase.kind === PhaseKind.LLM && phase.providerLabel && (
          <span className="phase-provider" title={phase.providerLabel}>
            {phase.providerLabel}
          </span>
        )}
      </div>
      <div className="phase-foot">
        <span className="badge" style={{ background: look.color, color: look.text }}>
          {look.label}
        </span>
        <span className="phase-attempt">{phase.attempt > 0 ? `attempt ${phase.attempt}` : "not run yet"}</span>
        {elapsed !== undefined && <span className="phase-elapsed">{formatDuration(elapsed)}</span>}
      </div>
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </div>
  );
}

/** Re-rendered only when its phase or selection changes. */
export const PhaseNode = memo(PhaseNodeView);
