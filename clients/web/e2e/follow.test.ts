/**
 * The stream loop against a real `orchestra up`: followRun loads the run,
 * follows WatchRun, rides out the server stopping and starting again
 * mid-run, and ends with every event applied exactly once, in order.
 */
import { afterAll, beforeAll, expect, it } from "vitest";

import { createClients, grpcWebTransport } from "../src/api/clients.js";
import { PhaseState, RunStatus } from "../src/gen/orchestra/v1/common_pb.js";
import type { RunEvent } from "../src/gen/orchestra/v1/run_pb.js";
import { createRunStore } from "../src/store/runStore.js";
import type { ConnectionStatus } from "../src/store/transitions.js";
import { followRun } from "../src/stream/followRun.js";
import { Up } from "./server.js";

let up: Up;
beforeAll(async () => {
  up = await Up.start();
});
afterAll(async () => {
  await up?.dispose();
});

async function until(what: string, check: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${up.log()}`);
    await new Promise((done) => setTimeout(done, 25));
  }
}

it("follows a run across a server restart, applying each event once", async () => {
  const runId = up.startManualDiamond();
  const { runs } = createClients(grpcWebTransport(up.url));
  const store = createRunStore();
  // Record every event handed to the store and what became of it.
  const seen: { seq: bigint; outcome: string }[] = [];
  const apply = store.getState().applyEvent;
  const setSnapshot = store.getState().setSnapshot;
  const snapshots: bigint[] = [];
  store.setState({
    setSnapshot: (response) => {
      snapshots.push(response.seq);
      setSnapshot(response);
    },
    applyEvent: (event: RunEvent) => {
      const outcome = apply(event);
      seen.push({ seq: event.seq, outcome });
      return outcome;
    },
  });
  const statuses: ConnectionStatus[] = [];
  store.subscribe((state, previous) => {
    if (state.connectionStatus !== previous.connectionStatus) statuses.push(state.connectionStatus);
  });
  const stateOf = (id: string) => store.getState().snapshot?.phases.find((p) => p.id === id)?.state;

  const abort = new AbortController();
  const following = followRun(runs, store, runId, abort.signal, { initialMs: 50, maxMs: 400 });
  await until("the snapshot", () => store.getState().snapshot !== null);
  await until("the stream to open", () => store.getState().connectionStatus === "open");

  up.cli("run", "continue", runId, "a");
  await until("a to complete", () => stateOf("a") === PhaseState.COMPLETED);

  // Every connection drops; events happen while the client cannot hear.
  await up.stop();
  await until("the loop to notice", () => store.getState().connectionStatus === "error");
  await up.startAgain();
  up.cli("run", "continue", runId, "b");
  up.cli("run", "continue", runId, "c");
  await until("b and c to complete", () => stateOf("b") === PhaseState.COMPLETED && stateOf("c") === PhaseState.COMPLETED);
  up.cli("run", "continue", runId, "d");

  await following; // returns by itself once the run has finished
  const state = store.getState();
  expect(state.snapshot?.run.status).toBe(RunStatus.COMPLETED);
  expect(state.snapshot?.phases.map((p) => p.state)).toEqual(Array(4).fill(PhaseState.COMPLETED));
  expect(state.connectionStatus).toBe("closed");
  expect(statuses).toContain("error");

  // The server's own count: the log holds exactly the events applied.
  const server = await runs.getRun({ runId });
  expect(state.lastSeq).toBe(server.seq);
  // One snapshot (no gap forced a reload), then every later event once,
  // in order: what was replayed after the restart was dropped as a
  // duplicate or never sent.
  expect(snapshots).toHaveLength(1);
  const applied = seen.filter((s) => s.outcome === "applied").map((s) => s.seq);
  const expected: bigint[] = [];
  for (let seq = snapshots[0] + 1n; seq <= server.seq; seq++) expected.push(seq);
  expect(applied).toEqual(expected);
  expect(applied.length).toBeGreaterThan(8);
  abort.abort();
});
