/**
 * Keeps the inbox store live: `WatchInbox`, and once its stream is open a
 * full `ListInbox` that replaces what the store holds (so a task closed
 * while the page was disconnected leaves), with the changes streamed
 * meanwhile applied again on top. Reconnects with backoff until `signal`
 * aborts.
 */
import type { StoreApi } from "zustand";

import type { ReviewClient } from "../api/clients.js";
import type { HumanTask } from "../gen/orchestra/v1/review_pb.js";
import { type Backoff, DEFAULT_BACKOFF, sleep } from "../stream/followRun.js";
import type { InboxStore } from "./inboxStore.js";

/** Follows the inbox into `store` until `signal` aborts. */
export async function followInbox(
  client: ReviewClient,
  store: StoreApi<InboxStore>,
  signal: AbortSignal,
  backoff: Backoff = DEFAULT_BACKOFF,
): Promise<void> {
  const actions = store.getState();
  let delay = backoff.initialMs;
  while (!signal.aborted) {
    actions.setConnectionStatus("connecting");
    const since: HumanTask[] = [];
    let listing = true;
    try {
      const stream = client.watchInbox(
        {},
        {
          signal,
          onHeader: () => {
            actions.setConnectionStatus("open");
            client
              .listInbox({ includeClosed: false, runId: "" }, { signal })
              .then((listed) => {
                actions.replace(listed.tasks, since);
                listing = false;
                delay = backoff.initialMs;
              })
              .catch(() => {
                // The stream's own failure, if any, reconnects.
              });
          },
        },
      );
      for await (const response of stream) {
        if (!response.task) continue;
        if (listing) since.push(response.task);
        actions.apply(response.task);
      }
    } catch {
      // Every failure here is the connection's: try again after a wait.
      if (signal.aborted) break;
    }
    actions.setConnectionStatus("error");
    await sleep(delay, signal);
    delay = Math.min(delay * 2, backoff.maxMs);
  }
  actions.setConnectionStatus("closed");
}
