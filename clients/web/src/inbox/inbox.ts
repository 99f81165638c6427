/**
 * The inbox as the page keeps it: the open (and claimed) human tasks by
 * id, changed by each task `WatchInbox` sends as it now stands. A task
 * done or cancelled leaves; an older copy of a task never replaces a newer
 * one, so a replay after a reconnect cannot undo a change. Pure.
 */
import { HumanTaskState, type HumanTask } from "../gen/orchestra/v1/review_pb.js";
import { timestampMs } from "../store/time.js";

/** Open tasks by id. */
export type Inbox = ReadonlyMap<string, HumanTask>;

/** Whether a task still waits for a person. */
export function isOpen(task: HumanTask): boolean {
  return task.state === HumanTaskState.OPEN || task.state === HumanTaskState.CLAIMED;
}

/** The inbox after `task` changed. */
export function applyTask(inbox: Inbox, task: HumanTask): Inbox {
  const known = inbox.get(task.id);
  if (known && (timestampMs(known.updatedAt) ?? 0) > (timestampMs(task.updatedAt) ?? 0)) return inbox;
  if (!isOpen(task)) {
    if (!known) return inbox;
    const next = new Map(inbox);
    next.delete(task.id);
    return next;
  }
  const next = new Map(inbox);
  next.set(task.id, task);
  return next;
}

/**
 * The inbox from a full listing, with the changes that arrived while it
 * was being read applied again on top.
 */
export function replaceInbox(listed: HumanTask[], since: HumanTask[]): Inbox {
  let inbox: Inbox = new Map(listed.filter(isOpen).map((t) => [t.id, t]));
  for (const task of since) inbox = applyTask(inbox, task);
  return inbox;
}

/** The open tasks, oldest first. */
export function inboxTasks(inbox: Inbox): HumanTask[] {
  return [...inbox.values()].sort((a, b) => (timestampMs(a.createdAt) ?? 0) - (timestampMs(b.createdAt) ?? 0));
}
