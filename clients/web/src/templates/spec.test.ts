import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";

import { PhaseKind } from "../gen/orchestra/v1/common_pb.js";
import { PhaseDefinitionSchema } from "../gen/orchestra/v1/template_pb.js";
import { definitionPhases, inputsSchema, runInputs } from "./spec.js";

describe("a template's inputs and graph", () => {
  it("makes one form of the run inputs, required unless the template says not", () => {
    const spec = JSON.stringify({
      inputs: {
        brief: { schema: { type: "string" }, description: "What to do" },
        budget: { schema: { type: "integer" }, required: false },
        anything: {},
      },
    });
    expect(inputsSchema(spec)).toEqual({
      type: "object",
      properties: { brief: { type: "string", description: "What to do" }, budget: { type: "integer" }, anything: {} },
      required: ["brief", "anything"],
    });
    expect(inputsSchema(JSON.stringify({ phases: [] }))).toBeNull();
    expect(inputsSchema("not json")).toBeNull();
  });

  it("sends each given value as JSON text", () => {
    expect(runInputs({ brief: "hi", budget: 3, gone: undefined, tree: { a: [1] } })).toEqual({
      brief: '"hi"',
      budget: "3",
      tree: '{"a":[1]}',
    });
    expect(runInputs(undefined)).toEqual({});
  });

  it("draws definitions as phases not run yet", () => {
    const phases = definitionPhases([create(PhaseDefinitionSchema, { id: "b", title: "B", kind: PhaseKind.LLM, needs: ["a"] })]);
    expect(phases.map((p) => [p.id, p.title, p.kind, p.needs, p.attempt])).toEqual([["b", "B", PhaseKind.LLM, ["a"], 0]]);
  });
});
