import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";

import { RunStatus } from "../gen/orchestra/v1/common_pb.js";
import { RunSchema } from "../gen/orchestra/v1/run_pb.js";
import { hashOf, queryOf, runDuration } from "./runsQuery.js";

describe("the runs query", () => {
  it("round-trips through the hash, unknown values dropped", () => {
    const query = { status: RunStatus.FAILED, template: "backtrack ui" };
    expect(hashOf(query)).toBe("#/?state=failed&template=backtrack+ui");
    expect(queryOf(hashOf(query))).toEqual(query);
    expect(hashOf({ template: "" })).toBe("#/");
    expect(queryOf("#/?state=bogus")).toEqual({ status: undefined, template: "" });
    expect(queryOf("")).toEqual({ status: undefined, template: "" });
  });

  it("measures a finished run to its end and a live one to now", () => {
    const finished = create(RunSchema, {
      status: RunStatus.COMPLETED,
      createdAt: timestampFromMs(1_000),
      updatedAt: timestampFromMs(61_000),
    });
    expect(runDuration(finished, 999_000)).toBe(60_000);
    const live = create(RunSchema, { status: RunStatus.RUNNING, createdAt: timestampFromMs(1_000), updatedAt: timestampFromMs(2_000) });
    expect(runDuration(live, 11_000)).toBe(10_000);
    expect(runDuration(create(RunSchema, {}), 5)).toBeUndefined();
  });
});
