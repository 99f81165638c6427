import { create, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";

import { FieldViolationSchema } from "../gen/orchestra/v1/common_pb.js";
import { errorSchemaOf, fieldFaults, pointerSegments } from "./violations.js";

function badRequest(...violations: [string, string][]): Uint8Array {
  const writer = new BinaryWriter();
  for (const [field, description] of violations) {
    writer.tag(1, 2).bytes(toBinary(FieldViolationSchema, create(FieldViolationSchema, { field, description })));
  }
  return writer.finish();
}

describe("field violations", () => {
  it("reads google.rpc.BadRequest's violations from an error's details", () => {
    // As connect-web hands them over: decoded from grpc-status-details-bin, by type name.
    const error = Object.assign(new ConnectError("the form has 2 fault(s)", Code.InvalidArgument), {
      details: [
        { type: "google.rpc.BadRequest", value: badRequest(["/intent", "is too short"], ["/", '"target_slot" is a required property']) },
        { type: "google.rpc.DebugInfo", value: new Uint8Array([1, 2]) },
      ],
    });
    expect(fieldFaults(error)).toEqual([
      { field: "/intent", description: "is too short" },
      { field: "/", description: '"target_slot" is a required property' },
    ]);
    expect(fieldFaults(new ConnectError("down", Code.Unavailable))).toEqual([]);
  });

  it("puts each fault at its field, a missing one at the missing field", () => {
    expect(
      errorSchemaOf([
        { field: "/intent", description: "is too short" },
        { field: "/", description: '"target_slot" is a required property' },
        { field: "/rubric/0/weight", description: "-1 is less than the minimum of 0" },
        { field: "/", description: "not an object" },
      ]),
    ).toEqual({
      intent: { __errors: ["is too short"] },
      target_slot: { __errors: ["is required"] },
      rubric: { 0: { weight: { __errors: ["-1 is less than the minimum of 0"] } } },
      __errors: ["not an object"],
    });
  });

  it("reads JSON pointers, escapes included", () => {
    expect(pointerSegments("/a/0/b~1c~0d")).toEqual(["a", "0", "b/c~d"]);
    expect(pointerSegments("/")).toEqual([]);
    expect(pointerSegments("content_json")).toEqual([]);
  });
});

describe("the form's layout", () => {
  it("gives long text fields a text area", async () => {
    const { longTextAreas } = await import("./InputForm.js");
    expect(
      longTextAreas({ type: "object", properties: { intent: { type: "string", maxLength: 2000 }, slot: { type: "string", maxLength: 64 } } }),
    ).toEqual({ intent: { "ui:widget": "textarea", "ui:options": { rows: 4 } } });
  });
});

describe("option titles", () => {
  it("names each untitled option by its constant, at any depth", async () => {
    const { titledOptions } = await import("./InputForm.js");
    const schema = {
      $defs: {
        check: {
          oneOf: [
            { properties: { type: { const: "max_ops" }, value: { type: "integer" } } },
            { title: "Kept", properties: { type: { const: "tokens_only" } } },
            { properties: { value: { type: "string" } } },
          ],
        },
      },
    };
    const titled = titledOptions(schema) as typeof schema;
    expect(titled.$defs.check.oneOf.map((o) => (o as { title?: string }).title)).toEqual(["max_ops", "Kept", undefined]);
    expect(schema.$defs.check.oneOf[0]).not.toHaveProperty("title");
  });
});
