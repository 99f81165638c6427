/**
 * The inbox loop against a real `orchestra up`: followInbox fills the
 * store from WatchInbox, rides out the server stopping and starting again,
 * and after a gap in which tasks were opened and closed, shows exactly the
 * open ones.
 */
import { afterAll, beforeAll, expect, it } from "vitest";

import { createClients, grpcWebTransport } from "../src/api/clients.js";
import { followInbox } from "../src/inbox/followInbox.js";
import { createInboxStore } from "../src/inbox/inboxStore.js";
import { Up } from "./server.js";

let up: Up;
beforeAll(async () => {
  up = await Up.start();
});
afterAll(async () => {
  await up?.dispose();
});

async function until(what: string, check: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${up.log()}`);
    await new Promise((done) => setTimeout(done, 25));
  }
}

it("follows the inbox across a restart, and a gap leaves only the open tasks", async () => {
  const { review } = createClients(grpcWebTransport(up.url));
  const store = createInboxStore();
  const phases = () => [...store.getState().tasks.values()].map((t) => `${t.key?.runId}/${t.key?.phaseId}`).sort();
  const fast = { initialMs: 50, maxMs: 200 };
  let following = new AbortController();
  void followInbox(review, store, following.signal, fast);
  await until("the inbox to load", () => store.getState().loaded);
  expect(store.getState().tasks.size).toBe(0);

  const first = up.startBacktrack();
  await until("the context task", () => phases().join() === `${first}/context`);

  await up.stop();
  await until("the loss to be seen", () => store.getState().connectionStatus === "error");
  await up.startAgain();
  await until("the reconnection", () => store.getState().connectionStatus === "open");

  up.cli("input", "submit", await up.task(first, "context"), Up.backtrackContext());
  await until("the review task, the context gone", () => phases().join() === `${first}/review`);

  // A gap: while nobody follows, one task closes and another opens.
  following.abort();
  up.cli("review", "approve", await up.task(first, "review"), "--select", "a");
  const second = up.startBacktrack();
  await up.task(second, "context");
  expect(phases()).toEqual([`${first}/review`]);
  following = new AbortController();
  void followInbox(review, store, following.signal, fast);
  await until("exactly the open tasks", () => phases().join() === `${second}/context`);
  following.abort();
});
