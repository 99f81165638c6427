import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";

import { PhaseSchema } from "../gen/orchestra/v1/run_pb.js";
import { layoutPhases, NODE_HEIGHT, NODE_WIDTH, shapeKey } from "./layout.js";

const diamond = [
  create(PhaseSchema, { id: "a" }),
  create(PhaseSchema, { id: "b", needs: ["a"] }),
  create(PhaseSchema, { id: "c", needs: ["a"] }),
  create(PhaseSchema, { id: "d", needs: ["b", "c"] }),
];

describe("layout", () => {
  it("places each phase right of the phases it needs, siblings apart", () => {
    const { positions, edges } = layoutPhases(diamond);
    const at = (id: string) => positions.get(id) ?? { x: NaN, y: NaN };
    expect(at("b").x).toBeGreaterThanOrEqual(at("a").x + NODE_WIDTH);
    expect(at("c").x).toBe(at("b").x);
    expect(Math.abs(at("b").y - at("c").y)).toBeGreaterThanOrEqual(NODE_HEIGHT);
    expect(at("d").x).toBeGreaterThanOrEqual(at("b").x + NODE_WIDTH);
    expect(edges.map((e) => e.id).sort()).toEqual(["a->b", "a->c", "b->d", "c->d"]);
  });

  it("ignores a need of a phase the run does not have", () => {
    const { edges } = layoutPhases([create(PhaseSchema, { id: "x", needs: ["gone"] })]);
    expect(edges).toEqual([]);
  });

  it("keys the graph by its shape only", () => {
    const moved = diamond.map((p) => ({ ...p, attempt: 3 }));
    expect(shapeKey(moved)).toBe(shapeKey(diamond));
    expect(shapeKey(diamond.slice(0, 3))).not.toBe(shapeKey(diamond));
  });
});

describe("nodes", () => {
  it("keeps the node of an unchanged phase, so only changed ones redraw", async () => {
    const { phaseNodes } = await import("./layout.js");
    const { positions } = layoutPhases(diamond);
    const first = phaseNodes(diamond, positions, null);
    const moved = diamond.map((p) => (p.id === "b" ? create(PhaseSchema, { ...p, attempt: 1 }) : p));
    const second = phaseNodes(moved, positions, null);
    expect(second.map((n, i) => n === first[i])).toEqual([true, false, true, true]);
    const selected = phaseNodes(moved, positions, "c");
    expect(selected.map((n, i) => n === second[i])).toEqual([true, true, false, true]);
  });
});
