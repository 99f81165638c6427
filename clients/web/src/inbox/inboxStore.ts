/**
 * The inbox's store (Zustand): the open tasks and where the live
 * connection stands; {@link followInbox} keeps it live while the page is
 * open, and the navigation reads its count.
 */
import { useStore } from "zustand";
import { createStore, type StoreApi } from "zustand/vanilla";

import type { HumanTask } from "../gen/orchestra/v1/review_pb.js";
import type { ConnectionStatus } from "../store/transitions.js";
import { applyTask, type Inbox, replaceInbox } from "./inbox.js";

/** The inbox's state and actions. */
export interface InboxStore {
  tasks: Inbox;
  /** Whether a full listing has arrived yet. */
  loaded: boolean;
  connectionStatus: ConnectionStatus;
  apply(task: HumanTask): void;
  replace(listed: HumanTask[], since: HumanTask[]): void;
  setConnectionStatus(status: ConnectionStatus): void;
}

/** A fresh inbox store; the page uses {@link inboxStore}. */
export function createInboxStore(): StoreApi<InboxStore> {
  return createStore<InboxStore>()((set) => ({
    tasks: new Map(),
    loaded: false,
    connectionStatus: "closed",
    apply: (task) => set((state) => ({ tasks: applyTask(state.tasks, task) })),
    replace: (listed, since) => set({ tasks: replaceInbox(listed, since), loaded: true }),
    setConnectionStatus: (connectionStatus) => set({ connectionStatus }),
  }));
}

/** The page's inbox. */
export const inboxStore = createInboxStore();

/** Reads a slice of the inbox, re-rendering when it changes. */
export function useInbox<T>(selector: (state: InboxStore) => T): T {
  return useStore(inboxStore, selector);
}
