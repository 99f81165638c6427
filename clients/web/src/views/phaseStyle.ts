/**
 * How phase and run states read on the page: a word for each (colour is
 * never the only signal) and the colour that goes with it.
 */
import { PhaseKind, PhaseState, RunStatus } from "../gen/orchestra/v1/common_pb.js";

/** A state's label and colours. */
export interface StateLook {
  label: string;
  /** Background and text of the badge; the node's border takes `color`. */
  color: string;
  text: string;
}

const PHASE_LOOKS: Record<PhaseState, StateLook> = {
  [PhaseState.UNSPECIFIED]: { label: "unknown", color: "#9ca3af", text: "#111827" },
  [PhaseState.BLOCKED]: { label: "blocked", color: "#9ca3af", text: "#111827" },
  [PhaseState.READY]: { label: "ready", color: "#60a5fa", text: "#0b1b33" },
  [PhaseState.QUEUED]: { label: "queued", color: "#818cf8", text: "#111133" },
  [PhaseState.RUNNING]: { label: "running", color: "#f59e0b", text: "#2b1a00" },
  [PhaseState.COMPLETED]: { label: "completed", color: "#22c55e", text: "#052e12" },
  [PhaseState.ERROR]: { label: "error", color: "#ef4444", text: "#ffffff" },
  [PhaseState.WAITING_FOR_HUMAN]: { label: "waiting for a person", color: "#c084fc", text: "#2a0a3d" },
  [PhaseState.READY_FOR_REVIEW]: { label: "ready for review", color: "#e879f9", text: "#3b0a3d" },
  [PhaseState.APPROVED]: { label: "approved", color: "#16a34a", text: "#ffffff" },
  [PhaseState.REJECTED]: { label: "rejected", color: "#f97316", text: "#2b1000" },
  [PhaseState.SKIPPED]: { label: "skipped", color: "#d1d5db", text: "#111827" },
  [PhaseState.CANCELLED]: { label: "cancelled", color: "#6b7280", text: "#ffffff" },
};

const RUN_LOOKS: Record<RunStatus, StateLook> = {
  [RunStatus.UNSPECIFIED]: { label: "unknown", color: "#9ca3af", text: "#111827" },
  [RunStatus.PENDING]: { label: "pending", color: "#9ca3af", text: "#111827" },
  [RunStatus.RUNNING]: { label: "running", color: "#f59e0b", text: "#2b1a00" },
  [RunStatus.WAITING_FOR_HUMAN]: { label: "waiting for a person", color: "#c084fc", text: "#2a0a3d" },
  [RunStatus.COMPLETED]: { label: "completed", color: "#22c55e", text: "#052e12" },
  [RunStatus.FAILED]: { label: "failed", color: "#ef4444", text: "#ffffff" },
  [RunStatus.CANCELLED]: { label: "cancelled", color: "#6b7280", text: "#ffffff" },
};

const KIND_LABELS: Record<PhaseKind, string> = {
  [PhaseKind.UNSPECIFIED]: "phase",
  [PhaseKind.HUMAN_INPUT]: "human input",
  [PhaseKind.HUMAN_REVIEW]: "human review",
  [PhaseKind.LLM]: "llm",
  [PhaseKind.FUNCTION]: "function",
  [PhaseKind.LOOP]: "loop",
};

/** The look of a phase state (an unknown, newer state reads "unknown"). */
export function phaseLook(state: PhaseState): StateLook {
  return PHASE_LOOKS[state] ?? PHASE_LOOKS[PhaseState.UNSPECIFIED];
}

/** The look of a run status. */
export function runLook(status: RunStatus): StateLook {
  return RUN_LOOKS[status] ?? RUN_LOOKS[RunStatus.UNSPECIFIED];
}

/** The word for a phase kind. */
export function kindLabel(kind: PhaseKind): string {
  return KIND_LABELS[kind] ?? "phase";
}

/** "4 s", "2 min 5 s", "1 h 3 min". */
export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${seconds % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}
