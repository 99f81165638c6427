import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";

import { HumanTaskSchema, HumanTaskState } from "../gen/orchestra/v1/review_pb.js";
import { applyTask, inboxTasks, replaceInbox } from "./inbox.js";

function task(id: string, state: HumanTaskState, updatedMs: number, createdMs = updatedMs) {
  return create(HumanTaskSchema, { id, state, updatedAt: timestampFromMs(updatedMs), createdAt: timestampFromMs(createdMs) });
}

describe("inbox", () => {
  it("adds open and claimed tasks, and drops done and cancelled ones", () => {
    let inbox = applyTask(new Map(), task("a", HumanTaskState.OPEN, 1));
    inbox = applyTask(inbox, task("b", HumanTaskState.CLAIMED, 2));
    expect(inboxTasks(inbox).map((t) => t.id)).toEqual(["a", "b"]);
    inbox = applyTask(inbox, task("a", HumanTaskState.DONE, 3));
    inbox = applyTask(inbox, task("b", HumanTaskState.CANCELLED, 4));
    expect(inbox.size).toBe(0);
    expect(applyTask(inbox, task("c", HumanTaskState.DONE, 5))).toBe(inbox);
  });

  it("never lets an older copy undo a newer one", () => {
    const inbox = applyTask(new Map(), task("a", HumanTaskState.CLAIMED, 5));
    expect(applyTask(inbox, task("a", HumanTaskState.OPEN, 4))).toBe(inbox);
  });

  it("replaces everything from a listing, then reapplies what streamed meanwhile", () => {
    const listed = [task("a", HumanTaskState.OPEN, 1), task("b", HumanTaskState.OPEN, 1)];
    const inbox = replaceInbox(listed, [task("b", HumanTaskState.DONE, 2), task("c", HumanTaskState.OPEN, 3)]);
    expect(inboxTasks(inbox).map((t) => t.id)).toEqual(["a", "c"]);
  });
});
