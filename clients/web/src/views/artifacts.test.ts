import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";

import { ArtifactVersionSchema } from "../gen/orchestra/v1/artifact_pb.js";
import { ArtifactRefSchema } from "../gen/orchestra/v1/common_pb.js";
import { comparableText, contentText, groupVersions, outputSchema, sortKeys, versionLabel } from "./artifacts.js";

const bytes = (text: string) => new TextEncoder().encode(text);

function version(artifactId: string, name: string, v: number, phaseId: string, valid = true, isLatest = false) {
  return create(ArtifactVersionSchema, {
    ref: create(ArtifactRefSchema, { artifactId, name, version: v, phaseId, attempt: 1 }),
    valid,
    isLatest,
  });
}

describe("artifact content", () => {
  it("pretty-prints JSON and leaves other text as it is", () => {
    expect(contentText(bytes('{"b":1,"a":[1,2]}'))).toBe('{\n  "b": 1,\n  "a": [\n    1,\n    2\n  ]\n}');
    expect(contentText(bytes("plain words"), "text/plain")).toBe("plain words");
    expect(contentText(bytes("{ not json"))).toBe("{ not json");
  });

  it("compares with keys sorted at every depth, so order is not a change", () => {
    expect(comparableText(bytes('{"b":{"y":1,"x":2},"a":0}'))).toBe(comparableText(bytes('{"a":0,"b":{"x":2,"y":1}}')));
    expect(sortKeys([{ b: 1, a: 2 }])).toEqual([{ a: 2, b: 1 }]);
    expect(Object.keys(sortKeys({ b: 1, a: 2 }) as object)).toEqual(["a", "b"]);
  });

  it("labels and groups versions, newest first", () => {
    const groups = groupVersions([
      version("v", "variant", 1, "variant_a"),
      version("v", "variant", 2, "variant_b", true, true),
      version("c", "context", 1, "context", false),
    ]);
    expect(groups.map((g) => [g.name, g.versions.map((v) => v.ref?.version)])).toEqual([
      ["context", [1]],
      ["variant", [2, 1]],
    ]);
    expect(versionLabel(groups[1].versions[0])).toBe("v2 · variant_b, attempt 1 · latest");
    expect(versionLabel(groups[0].versions[0])).toBe("v1 · context, attempt 1 · invalid");
  });

  it("finds the output schema a phase declares in the bundled spec", () => {
    const spec = JSON.stringify({ phases: [{ id: "a", output: { name: "x", schema: { type: "object" } } }, { id: "b" }] });
    expect(outputSchema(spec, "a")).toBe('{\n  "type": "object"\n}');
    expect(outputSchema(spec, "b")).toBeNull();
    expect(outputSchema("not json", "a")).toBeNull();
  });
});
