import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";

import { ActorKind, PhaseState, RunStatus } from "../gen/orchestra/v1/common_pb.js";
import { GetRunResponseSchema, RunEventSchema, RunSchema, type RunEvent } from "../gen/orchestra/v1/run_pb.js";
import { describeEvent } from "./describe.js";
import { attemptHistory, HISTORY_LIMIT, historyComplete, mergeHistory } from "./history.js";
import { initialRunViewState, reduceEvent, reduceHistory, withSnapshot } from "./transitions.js";

const RUN = "run-1";

function event(seq: number, body: RunEvent["body"] = { case: undefined }): RunEvent {
  return create(RunEventSchema, { runId: RUN, seq: BigInt(seq), time: timestampFromMs(1_000 * seq), body });
}

function changed(seq: number, phaseId: string, attempt: number, from: PhaseState, to: PhaseState, reason = "", person = ""): RunEvent {
  return event(seq, {
    case: "phaseStateChanged",
    value: {
      $typeName: "orchestra.v1.PhaseStateChanged",
      phaseId,
      attempt,
      from,
      to,
      reason,
      actor: person ? { $typeName: "orchestra.v1.Actor", kind: ActorKind.PERSON, id: person } : undefined,
    },
  });
}

const seqs = (events: RunEvent[]) => events.map((e) => Number(e.seq));

describe("history", () => {
  it("appends live events and merges read-back ones in order, each once", () => {
    const live = mergeHistory(mergeHistory([], [event(5)]), [event(6)]);
    expect(seqs(live)).toEqual([5, 6]);
    const backfilled = mergeHistory(live, [event(1), event(2), event(3), event(4), event(5)]);
    expect(seqs(backfilled)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(mergeHistory(backfilled, [])).toBe(backfilled);
    expect(historyComplete(backfilled, 6n)).toBe(true);
    expect(historyComplete(live, 6n)).toBe(false);
    expect(historyComplete([], 0n)).toBe(true);
  });

  it("keeps at most the newest HISTORY_LIMIT events", () => {
    const many = Array.from({ length: HISTORY_LIMIT + 10 }, (_, i) => event(i + 1));
    const kept = mergeHistory([], many);
    expect(kept).toHaveLength(HISTORY_LIMIT);
    expect(Number(kept[0].seq)).toBe(11);
  });

  it("the store records applied events and read-back ones up to the snapshot only", () => {
    const snap = withSnapshot(
      initialRunViewState,
      create(GetRunResponseSchema, { run: create(RunSchema, { id: RUN, status: RunStatus.RUNNING }), phases: [], seq: 3n }),
    );
    const live = reduceEvent(snap, event(4)).state;
    expect(seqs(live.history)).toEqual([4]);
    const back = reduceHistory(live, [event(1), event(2), event(3), event(4), event(9)]);
    expect(seqs(back.history)).toEqual([1, 2, 3, 4]);
    const other = create(RunEventSchema, { runId: "run-2", seq: 1n });
    expect(reduceHistory(back, [other])).toBe(back);
  });

  it("tells each attempt of a phase: when it ran, how it ended, why, and who", () => {
    const history = [
      changed(1, "a", 1, PhaseState.BLOCKED, PhaseState.READY),
      changed(2, "a", 1, PhaseState.READY, PhaseState.RUNNING),
      changed(3, "b", 1, PhaseState.READY, PhaseState.RUNNING),
      changed(5, "a", 1, PhaseState.RUNNING, PhaseState.ERROR, "output broke its schema"),
      changed(6, "a", 2, PhaseState.ERROR, PhaseState.RUNNING),
      changed(9, "a", 2, PhaseState.RUNNING, PhaseState.COMPLETED),
      changed(10, "a", 2, PhaseState.COMPLETED, PhaseState.REJECTED, "too bold", "ada"),
    ];
    const attempts = attemptHistory(history, "a");
    expect(attempts.map((a) => [a.attempt, a.state, a.endedAs, a.startedMs, a.endedMs, a.reason, a.by])).toEqual([
      [1, PhaseState.ERROR, PhaseState.ERROR, 2_000, 5_000, "output broke its schema", ""],
      [2, PhaseState.REJECTED, PhaseState.REJECTED, 6_000, 10_000, "too bold", "person ada"],
    ]);
    // Sent back by a review after it completed: it still ended, as completed.
    const sentBack = attemptHistory(
      [
        changed(1, "v", 1, PhaseState.READY, PhaseState.RUNNING),
        changed(2, "v", 1, PhaseState.RUNNING, PhaseState.COMPLETED),
        changed(3, "v", 1, PhaseState.COMPLETED, PhaseState.READY, "shorter labels", "lin"),
      ],
      "v",
    );
    expect(sentBack.map((a) => [a.state, a.endedAs, a.endedMs, a.reason])).toEqual([[PhaseState.READY, PhaseState.COMPLETED, 2_000, "shorter labels"]]);
    expect(attemptHistory(history, "nope")).toEqual([]);
  });
});

describe("events in words", () => {
  const title = (id: string) => ({ a: "Gather" })[id] ?? id;
  it("names the phase by its title, the states, the attempt, the person and the reason", () => {
    const line = describeEvent(changed(1, "a", 2, PhaseState.READY_FOR_REVIEW, PhaseState.REJECTED, "too bold", "ada"), title);
    expect(line).toEqual({ phaseId: "a", text: "Gather ready for review → rejected (attempt 2) by ada: too bold" });
  });
  it("says something for every kind", () => {
    const bodies: RunEvent["body"][] = [
      { case: "runStarted", value: { $typeName: "orchestra.v1.RunStarted", templateName: "t", templateVersion: 2, seed: 7n } },
      { case: "runStatusChanged", value: { $typeName: "orchestra.v1.RunStatusChanged", from: RunStatus.RUNNING, to: RunStatus.COMPLETED } },
      { case: "phaseOutputDelta", value: { $typeName: "orchestra.v1.PhaseOutputDelta", phaseId: "a", attempt: 1, text: "abc" } },
      { case: "humanTaskOpened", value: { $typeName: "orchestra.v1.HumanTaskOpened", phaseId: "a", attempt: 1, taskId: "t1" } },
      { case: undefined },
    ];
    expect(bodies.map((b) => describeEvent(event(1, b), title).text)).toEqual([
      "run started: t v2, seed 7",
      "run completed",
      "Gather streamed 3 characters",
      "Gather task opened for a person",
      "an event this page does not know",
    ]);
  });
});
