import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";

import { ArtifactRefSchema, PhaseKind, PhaseState, RunStatus } from "../gen/orchestra/v1/common_pb.js";
import {
  CancelRunResponseSchema,
  ContinuePhaseResponseSchema,
  GetRunResponseSchema,
  PhaseSchema,
  RunEventSchema,
  RunEventSchema as EventSchema,
  RunSchema,
  type RunEvent,
} from "../gen/orchestra/v1/run_pb.js";
import { createRunStore } from "./runStore.js";
import {
  initialRunViewState,
  reduceActionResponse,
  reduceEvent,
  reduceSelect,
  type RunViewState,
  withSnapshot,
} from "./transitions.js";

const RUN = "run-1";

function snapshot(seq: bigint = 3n): RunViewState {
  return withSnapshot(
    initialRunViewState,
    create(GetRunResponseSchema, {
      run: create(RunSchema, { id: RUN, templateName: "diamond", templateVersion: 1, status: RunStatus.RUNNING, lastSeq: seq }),
      phases: [
        create(PhaseSchema, { id: "a", title: "A", kind: PhaseKind.FUNCTION, state: PhaseState.RUNNING, attempt: 1 }),
        create(PhaseSchema, { id: "b", title: "B", kind: PhaseKind.LLM, state: PhaseState.BLOCKED, attempt: 1, needs: ["a"] }),
      ],
      seq,
    }),
  );
}

function event(seq: bigint, body: RunEvent["body"], runId = RUN): RunEvent {
  return create(EventSchema, { runId, seq, time: timestampFromMs(1_000 * Number(seq)), body });
}

function apply(state: RunViewState, ...events: RunEvent[]): RunViewState {
  return events.reduce((s, e) => reduceEvent(s, e).state, state);
}

function phase(state: RunViewState, id: string) {
  const found = state.snapshot?.phases.find((p) => p.id === id);
  if (!found) throw new Error(`no phase ${id}`);
  return found;
}

describe("snapshot", () => {
  it("sets the run, its phases and the sequence to resume from", () => {
    const state = snapshot(7n);
    expect(state.snapshot?.run.id).toBe(RUN);
    expect(state.snapshot?.phases.map((p) => p.id)).toEqual(["a", "b"]);
    expect(state.lastSeq).toBe(7n);
  });

  it("keeps a selection the new snapshot still has, and drops one it does not", () => {
    const selected = reduceSelect(snapshot(), "b");
    expect(selected.selectedPhaseId).toBe("b");
    expect(reduceSelect(selected, "nope").selectedPhaseId).toBe("b");
    const other = withSnapshot(
      selected,
      create(GetRunResponseSchema, { run: create(RunSchema, { id: "run-2" }), phases: [], seq: 1n }),
    );
    expect(other.selectedPhaseId).toBeNull();
  });
});

describe("each event kind", () => {
  it("runStarted records the template and seed", () => {
    const state = apply(
      snapshot(0n),
      event(1n, { case: "runStarted", value: { $typeName: "orchestra.v1.RunStarted", templateName: "diamond", templateVersion: 2, seed: 42n } }),
    );
    expect(state.snapshot?.run.templateVersion).toBe(2);
    expect(state.snapshot?.run.seed).toBe(42n);
    expect(state.lastSeq).toBe(1n);
  });

  it("runStatusChanged sets the run's status", () => {
    const state = apply(
      snapshot(),
      event(4n, { case: "runStatusChanged", value: { $typeName: "orchestra.v1.RunStatusChanged", from: RunStatus.RUNNING, to: RunStatus.COMPLETED } }),
    );
    expect(state.snapshot?.run.status).toBe(RunStatus.COMPLETED);
    expect(state.snapshot?.run.lastSeq).toBe(4n);
  });

  it("phaseStateChanged moves the phase, times it, and keeps the reason of a failure", () => {
    let state = apply(
      snapshot(),
      event(4n, { case: "phaseStateChanged", value: { $typeName: "orchestra.v1.PhaseStateChanged", phaseId: "b", attempt: 1, from: PhaseState.BLOCKED, to: PhaseState.RUNNING, reason: "" } }),
    );
    expect(phase(state, "b").state).toBe(PhaseState.RUNNING);
    expect(phase(state, "b").startedAt?.seconds).toBe(4n);
    state = apply(
      state,
      event(5n, { case: "phaseStateChanged", value: { $typeName: "orchestra.v1.PhaseStateChanged", phaseId: "b", attempt: 1, from: PhaseState.RUNNING, to: PhaseState.ERROR, reason: "output broke the schema" } }),
    );
    expect(phase(state, "b").state).toBe(PhaseState.ERROR);
    expect(phase(state, "b").error).toBe("output broke the schema");
    expect(phase(state, "b").finishedAt?.seconds).toBe(5n);
    // Phase a is untouched.
    expect(phase(state, "a").state).toBe(PhaseState.RUNNING);
  });

  it("phaseStateChanged to a new attempt clears the old attempt's output, error and text", () => {
    let state = apply(
      snapshot(),
      event(4n, { case: "phaseOutputDelta", value: { $typeName: "orchestra.v1.PhaseOutputDelta", phaseId: "a", attempt: 1, text: "old" } }),
      event(5n, { case: "phaseStateChanged", value: { $typeName: "orchestra.v1.PhaseStateChanged", phaseId: "a", attempt: 1, from: PhaseState.RUNNING, to: PhaseState.ERROR, reason: "boom" } }),
    );
    expect(state.streamed["a"]).toBe("old");
    state = apply(
      state,
      event(6n, { case: "phaseStateChanged", value: { $typeName: "orchestra.v1.PhaseStateChanged", phaseId: "a", attempt: 2, from: PhaseState.ERROR, to: PhaseState.RUNNING, reason: "" } }),
    );
    expect(phase(state, "a").attempt).toBe(2);
    expect(phase(state, "a").error).toBe("");
    expect(phase(state, "a").finishedAt).toBeUndefined();
    expect(state.streamed["a"]).toBeUndefined();
  });

  it("phaseOutputDelta appends the current attempt's text and ignores a stale attempt's", () => {
    const delta = (seq: bigint, attempt: number, text: string) =>
      event(seq, { case: "phaseOutputDelta", value: { $typeName: "orchestra.v1.PhaseOutputDelta", phaseId: "a", attempt, text } });
    const state = apply(snapshot(), delta(4n, 1, "Hel"), delta(5n, 1, "lo"), delta(6n, 0, "stale"));
    expect(state.streamed["a"]).toBe("Hello");
    expect(state.lastSeq).toBe(6n);
  });

  it("artifactAccepted sets the phase's output", () => {
    const artifact = create(ArtifactRefSchema, { artifactId: "art-1", version: 1, name: "merged" });
    const state = apply(
      snapshot(),
      event(4n, { case: "artifactAccepted", value: { $typeName: "orchestra.v1.ArtifactAccepted", phaseId: "a", attempt: 1, artifact } }),
    );
    expect(phase(state, "a").output?.artifactId).toBe("art-1");
  });

  it("humanTaskOpened records the task of the phase", () => {
    const state = apply(
      snapshot(),
      event(4n, { case: "humanTaskOpened", value: { $typeName: "orchestra.v1.HumanTaskOpened", phaseId: "b", attempt: 1, taskId: "task-9" } }),
    );
    expect(phase(state, "b").humanTaskId).toBe("task-9");
  });

  it("an event kind this client does not know still counts in the sequence", () => {
    const state = apply(snapshot(), event(4n, { case: undefined }));
    expect(state.lastSeq).toBe(4n);
  });
});

describe("sequences", () => {
  const started = (seq: bigint) =>
    event(seq, { case: "phaseOutputDelta", value: { $typeName: "orchestra.v1.PhaseOutputDelta", phaseId: "a", attempt: 1, text: `[${seq}]` } });

  it("applies a replayed event once: duplicates are dropped", () => {
    let state = snapshot();
    const first = reduceEvent(state, started(4n));
    expect(first.outcome).toBe("applied");
    state = first.state;
    const again = reduceEvent(state, started(4n));
    expect(again.outcome).toBe("duplicate");
    expect(again.state).toBe(state);
    // An event the snapshot already includes is a duplicate too.
    expect(reduceEvent(state, started(2n)).outcome).toBe("duplicate");
    expect(state.streamed["a"]).toBe("[4]");
  });

  it("refuses an event past a gap, so none is missed, and goes on once the gap is filled", () => {
    let state = snapshot();
    const early = reduceEvent(state, started(6n));
    expect(early.outcome).toBe("gap");
    expect(early.state).toBe(state);
    state = apply(state, started(4n), started(5n), started(6n), started(5n));
    expect(state.streamed["a"]).toBe("[4][5][6]");
    expect(state.lastSeq).toBe(6n);
  });

  it("ignores events before a snapshot and events of another run", () => {
    expect(reduceEvent(initialRunViewState, started(1n)).outcome).toBe("ignored");
    expect(reduceEvent(snapshot(), event(4n, { case: undefined }, "run-2")).outcome).toBe("ignored");
  });
});

describe("action responses", () => {
  it("a cancel shows at once, and older status events do not undo it", () => {
    let state = snapshot();
    state = reduceActionResponse(
      state,
      create(CancelRunResponseSchema, { run: create(RunSchema, { id: RUN, status: RunStatus.CANCELLED, lastSeq: 5n }) }),
    );
    expect(state.snapshot?.run.status).toBe(RunStatus.CANCELLED);
    expect(state.lastSeq).toBe(3n);
    const older = event(4n, { case: "runStatusChanged", value: { $typeName: "orchestra.v1.RunStatusChanged", from: RunStatus.PENDING, to: RunStatus.RUNNING } });
    state = apply(state, older);
    expect(state.lastSeq).toBe(4n);
    expect(state.snapshot?.run.status).toBe(RunStatus.CANCELLED);
  });

  it("a response older than the events shown is not applied", () => {
    const state = snapshot(9n);
    const stale = reduceActionResponse(
      state,
      create(CancelRunResponseSchema, { run: create(RunSchema, { id: RUN, status: RunStatus.PENDING, lastSeq: 2n }) }),
    );
    expect(stale).toBe(state);
  });

  it("a continued phase replaces the shown one", () => {
    const state = reduceActionResponse(
      snapshot(),
      create(ContinuePhaseResponseSchema, { phase: create(PhaseSchema, { id: "b", title: "B", state: PhaseState.QUEUED, attempt: 1 }) }),
    );
    expect(phase(state, "b").state).toBe(PhaseState.QUEUED);
  });

  it("a continue response arriving after the events that moved the phase on is not applied", () => {
    const moved = apply(
      snapshot(3n),
      event(4n, {
        case: "phaseStateChanged",
        value: { $typeName: "orchestra.v1.PhaseStateChanged", phaseId: "b", attempt: 1, from: PhaseState.RUNNING, to: PhaseState.COMPLETED, reason: "" },
      }),
    );
    const late = reduceActionResponse(
      moved,
      create(ContinuePhaseResponseSchema, { phase: create(PhaseSchema, { id: "b", title: "B", state: PhaseState.QUEUED, attempt: 1 }) }),
    );
    expect(late).toBe(moved);
    expect(phase(late, "b").state).toBe(PhaseState.COMPLETED);
  });
});

describe("the store", () => {
  it("dispatches every §9 action to the transitions", () => {
    const store = createRunStore();
    const { setSnapshot, applyEvent, selectPhase, setConnectionStatus } = store.getState();
    setConnectionStatus("connecting");
    setSnapshot(create(GetRunResponseSchema, { run: create(RunSchema, { id: RUN }), phases: [create(PhaseSchema, { id: "a" })], seq: 1n }));
    expect(applyEvent(create(RunEventSchema, { runId: RUN, seq: 2n })) ).toBe("applied");
    expect(applyEvent(create(RunEventSchema, { runId: RUN, seq: 2n }))).toBe("duplicate");
    selectPhase("a");
    setConnectionStatus("open");
    const state = store.getState();
    expect([state.lastSeq, state.selectedPhaseId, state.connectionStatus]).toEqual([2n, "a", "open"]);
    state.reset();
    expect(store.getState().snapshot).toBeNull();
  });
});
