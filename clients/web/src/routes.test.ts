import { describe, expect, it } from "vitest";

import { routeOf } from "./App.js";

describe("routes", () => {
  it("reads the page from the hash", () => {
    expect(routeOf("")).toEqual({ page: "runs" });
    expect(routeOf("#/")).toEqual({ page: "runs" });
    expect(routeOf("#/runs/r%201")).toEqual({ page: "run", runId: "r 1" });
    expect(routeOf("#/inbox")).toEqual({ page: "inbox" });
    expect(routeOf("#/tasks/t1")).toEqual({ page: "task", taskId: "t1" });
    expect(routeOf("#/nowhere")).toEqual({ page: "runs" });
    expect(routeOf("#/?state=failed")).toEqual({ page: "runs" });
    expect(routeOf("#/templates")).toEqual({ page: "templates" });
    expect(routeOf("#/templates/backtrack-ui-patch")).toEqual({ page: "template", name: "backtrack-ui-patch" });
    expect(routeOf("#/templates/backtrack-ui-patch/edit")).toEqual({ page: "edit", name: "backtrack-ui-patch" });
    expect(routeOf("#/templates/new/edit")).toEqual({ page: "edit", name: "" });
  });
});
