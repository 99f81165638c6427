/**
 * The run view's state and every change to it, as pure functions: a
 * snapshot from `GetRun`, each `WatchRun` event, and the responses of the
 * actions a person takes (start, continue, cancel). The Zustand store in
 * `runStore.ts` only calls these, so each is tested on its own.
 *
 * Events carry a gapless per-run sequence. An event at or below the last
 * one applied is a duplicate (a replay after a reconnect) and is dropped;
 * one above the next expected number means events were missed, and the
 * caller must fetch a fresh snapshot: no event is applied twice or skipped.
 */
import { PhaseState, RunStatus } from "../gen/orchestra/v1/common_pb.js";
import type {
  CancelRunResponse,
  ContinuePhaseResponse,
  GetRunResponse,
  Phase,
  Run,
  RunEvent,
  StartRunResponse,
} from "../gen/orchestra/v1/run_pb.js";
import { mergeHistory } from "./history.js";

/** Where the live connection to the run's events stands. */
export type ConnectionStatus = "connecting" | "open" | "closed" | "error";

/** A run and its phases, as one `GetRun` returned them and events since. */
export interface RunSnapshot {
  run: Run;
  /** In the order the template declares them. */
  phases: Phase[];
}

/** The state behind one run's page (the Backtrack plan's §9 shape). */
export interface RunViewState {
  snapshot: RunSnapshot | null;
  selectedPhaseId: string | null;
  connectionStatus: ConnectionStatus;
  /** The sequence of the newest event reflected in `snapshot` (0n: none). */
  lastSeq: bigint;
  /** Text each llm phase's current attempt has streamed so far. */
  streamed: Record<string, string>;
  /**
   * The run's sequence as of the newest action response that carried the
   * run: status events at or below it are older than what is shown.
   */
  runHeldUntilSeq: bigint;
  /**
   * The run's events in sequence order, for the timeline and attempt
   * history: the live ones as applied, the earlier ones as read back
   * ({@link reduceHistory}).
   */
  history: RunEvent[];
}

/** What became of an event handed to {@link reduceEvent}. */
export type EventOutcome =
  | "applied"
  /** At or below `lastSeq`: already reflected, dropped. */
  | "duplicate"
  /** Beyond `lastSeq + 1`: events were missed; fetch a snapshot again. */
  | "gap"
  /** No snapshot yet, or another run's event: dropped. */
  | "ignored";

/** The response of an action whose result the page shows at once. */
export type ActionResponse = StartRunResponse | ContinuePhaseResponse | CancelRunResponse;

/** The state before any run is loaded. */
export const initialRunViewState: RunViewState = {
  snapshot: null,
  selectedPhaseId: null,
  connectionStatus: "closed",
  lastSeq: 0n,
  streamed: {},
  runHeldUntilSeq: 0n,
  history: [],
};

/** States after which a phase's attempt has stopped running. */
const FINISHED_PHASE_STATES = new Set<PhaseState>([
  PhaseState.COMPLETED,
  PhaseState.ERROR,
  PhaseState.APPROVED,
  PhaseState.REJECTED,
  PhaseState.SKIPPED,
  PhaseState.CANCELLED,
]);

/** States a phase is shown in before a ContinuePhase response's state. */
const BEFORE_CONTINUE = new Set<PhaseState>([PhaseState.UNSPECIFIED, PhaseState.BLOCKED, PhaseState.READY]);

/** Whether a run can change no more (its event stream then ends). */
export function isRunFinished(status: RunStatus): boolean {
  return (
    status === RunStatus.COMPLETED || status === RunStatus.FAILED || status === RunStatus.CANCELLED
  );
}

/**
 * Replaces the snapshot with a `GetRun` response. A selection of a phase the
 * run still has is kept; streamed text is kept only for the same run, since
 * the snapshot does not carry it.
 */
export function withSnapshot(state: RunViewState, response: GetRunResponse): RunViewState {
  const run = response.run;
  if (!run) return state;
  const sameRun = state.snapshot?.run.id === run.id;
  const selected =
    state.selectedPhaseId !== null && response.phases.some((p) => p.id === state.selectedPhaseId)
      ? state.selectedPhaseId
      : null;
  return {
    ...state,
    snapshot: { run, phases: response.phases },
    lastSeq: response.seq,
    selectedPhaseId: selected,
    streamed: sameRun ? state.streamed : {},
    runHeldUntilSeq: sameRun ? state.runHeldUntilSeq : 0n,
    history: sameRun ? state.history : [],
  };
}

/** Applies one `WatchRun` event, if it is the next one of the shown run. */
export function reduceEvent(
  state: RunViewState,
  event: RunEvent,
): { state: RunViewState; outcome: EventOutcome } {
  const snapshot = state.snapshot;
  if (!snapshot || event.runId !== snapshot.run.id) return { state, outcome: "ignored" };
  if (event.seq <= state.lastSeq) return { state, outcome: "duplicate" };
  if (event.seq !== state.lastSeq + 1n) return { state, outcome: "gap" };

  let run: Run = { ...snapshot.run, lastSeq: event.seq, updatedAt: event.time ?? snapshot.run.updatedAt };
  let phases = snapshot.phases;
  let streamed = state.streamed;
  const body = event.body;
  switch (body.case) {
    case "runStarted":
      run = {
        ...run,
        templateName: body.value.templateName,
        templateVersion: body.value.templateVersion,
        seed: body.value.seed,
      };
      break;
    case "runStatusChanged":
      if (event.seq > state.runHeldUntilSeq) run = { ...run, status: body.value.to };
      break;
    case "phaseStateChanged": {
      const change = body.value;
      phases = updatePhase(phases, change.phaseId, (phase) => {
        const next: Phase = { ...phase, state: change.to };
        if (change.attempt > phase.attempt) {
          // A new attempt starts clean.
          next.attempt = change.attempt;
          next.output = undefined;
          next.error = "";
          next.humanTaskId = "";
          next.finishedAt = undefined;
          streamed = withoutKey(streamed, phase.id);
        }
        if (change.to === PhaseState.RUNNING || change.to === PhaseState.WAITING_FOR_HUMAN) {
          next.startedAt = event.time;
          next.finishedAt = undefined;
        }
        if (FINISHED_PHASE_STATES.has(change.to)) next.finishedAt = event.time;
        if (change.to === PhaseState.ERROR || change.to === PhaseState.REJECTED) {
          next.error = change.reason;
        }
        return next;
      });
      break;
    }
    case "phaseOutputDelta": {
      const delta = body.value;
      const phase = phases.find((p) => p.id === delta.phaseId);
      if (phase && delta.attempt === phase.attempt) {
        streamed = { ...streamed, [delta.phaseId]: (streamed[delta.phaseId] ?? "") + delta.text };
      }
      break;
    }
    case "artifactAccepted": {
      const accepted = body.value;
      phases = updatePhase(phases, accepted.phaseId, (phase) =>
        accepted.attempt === phase.attempt ? { ...phase, output: accepted.artifact } : phase,
      );
      break;
    }
    case "humanTaskOpened": {
      const opened = body.value;
      phases = updatePhase(phases, opened.phaseId, (phase) =>
        opened.attempt === phase.attempt ? { ...phase, humanTaskId: opened.taskId } : phase,
      );
      break;
    }
    case undefined:
      // An event kind newer than this client: its sequence still counts.
      break;
  }
  return {
    state: {
      ...state,
      snapshot: { run, phases },
      lastSeq: event.seq,
      streamed,
      history: mergeHistory(state.history, [event]),
    },
    outcome: "applied",
  };
}

/**
 * Shows an action's result before its events arrive. The event log stays
 * the authority: `lastSeq` is not moved, so the stream still delivers and
 * applies every event, and a run status newer than the events applied so
 * far is not overwritten by those older events.
 */
export function reduceActionResponse(state: RunViewState, response: ActionResponse): RunViewState {
  const snapshot = state.snapshot;
  if (!snapshot) return state;
  switch (response.$typeName) {
    case "orchestra.v1.StartRunResponse":
    case "orchestra.v1.CancelRunResponse": {
      const run = response.run;
      if (!run || run.id !== snapshot.run.id || run.lastSeq < state.lastSeq) return state;
      return {
        ...state,
        snapshot: { ...snapshot, run: { ...snapshot.run, status: run.status, updatedAt: run.updatedAt } },
        runHeldUntilSeq: run.lastSeq > state.runHeldUntilSeq ? run.lastSeq : state.runHeldUntilSeq,
      };
    }
    case "orchestra.v1.ContinuePhaseResponse": {
      const phase = response.phase;
      if (!phase) return state;
      // The response says where the phase stood when it was continued
      // (QUEUED); events that came first may already have carried it past
      // that, and must not be undone. Only a phase still shown before it
      // (blocked or ready), or an older attempt, takes the response.
      const phases = updatePhase(snapshot.phases, phase.id, (current) =>
        phase.attempt > current.attempt ||
        (phase.attempt === current.attempt && BEFORE_CONTINUE.has(current.state))
          ? phase
          : current,
      );
      return phases === snapshot.phases ? state : { ...state, snapshot: { ...snapshot, phases } };
    }
  }
}

/**
 * Adds events read back from the log (the run's start, after a reload) to
 * the history. Only the timeline changes: the snapshot already reflects
 * them.
 */
export function reduceHistory(state: RunViewState, events: RunEvent[]): RunViewState {
  const runId = state.snapshot?.run.id;
  const ours = events.filter((e) => e.runId === runId && e.seq <= state.lastSeq);
  if (ours.length === 0) return state;
  const history = mergeHistory(state.history, ours);
  return history === state.history ? state : { ...state, history };
}

/** Selects a phase of the shown run, or clears the selection. */
export function reduceSelect(state: RunViewState, phaseId: string | null): RunViewState {
  if (phaseId !== null && !state.snapshot?.phases.some((p) => p.id === phaseId)) return state;
  return { ...state, selectedPhaseId: phaseId };
}

export { timestampMs } from "./time.js";

function updatePhase(phases: Phase[], id: string, change: (phase: Phase) => Phase): Phase[] {
  const index = phases.findIndex((p) => p.id === id);
  if (index < 0) return phases;
  const updated = change(phases[index]);
  if (updated === phases[index]) return phases;
  const next = phases.slice();
  next[index] = updated;
  return next;
}

function withoutKey(record: Record<string, string>, key: string): Record<string, string> {
  if (!(key in record)) return record;
  const next = { ...record };
  delete next[key];
  return next;
}
