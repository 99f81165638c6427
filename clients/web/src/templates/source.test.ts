import { describe, expect, it } from "vitest";

import { faultLine, fieldPath, referencedFiles } from "./source.js";

const SOURCE = `name: t
description: two phases
phases:
  - id: a
    kind: function
    function: json.merge
  - id: b
    kind: llm
    needs: [a, zz]
    prompt: prompts/b.j2
    output: { name: out, schema: schemas/out.json }
`;

describe("template source", () => {
  it("reads field paths", () => {
    expect(fieldPath("phases[1].needs[0]")).toEqual(["phases", 1, "needs", 0]);
    expect(fieldPath("name")).toEqual(["name"]);
    expect(fieldPath("source")).toEqual(["source"]);
  });

  it("places a fault at its line, or at its nearest existing parent's", () => {
    expect(faultLine(SOURCE, "phases[1].needs[1]", "unknown phase zz")).toBe(9);
    expect(faultLine(SOURCE, "phases[1].needs", "bad")).toBe(9);
    expect(faultLine(SOURCE, "phases[0].function", "unknown function")).toBe(6);
    expect(faultLine(SOURCE, "phases[1].model", "an llm phase needs a model")).toBe(7);
    expect(faultLine(SOURCE, "name", "taken")).toBe(1);
    expect(faultLine(SOURCE, "source", "unknown field `functoin` at line 8 column 5")).toBe(8);
    expect(faultLine(SOURCE, "nowhere", "no line")).toBeUndefined();
  });

  it("recovers the files a stored source refers to from its bundled spec", () => {
    const spec = JSON.stringify({
      name: "t",
      phases: [
        { id: "a", kind: "function", function: "json.merge" },
        { id: "b", kind: "llm", needs: ["a", "zz"], prompt: "Say {{ x }}", output: { name: "out", schema: { type: "object" } } },
      ],
    });
    expect(referencedFiles(SOURCE, spec)).toEqual({
      "prompts/b.j2": "Say {{ x }}",
      "schemas/out.json": '{\n  "type": "object"\n}',
    });
    expect(referencedFiles(SOURCE, "not json")).toEqual({});
  });
});
