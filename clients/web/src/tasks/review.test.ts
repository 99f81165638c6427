import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";

import { ArtifactRefSchema } from "../gen/orchestra/v1/common_pb.js";
import { HumanTaskSchema, ReviewItemSchema } from "../gen/orchestra/v1/review_pb.js";
import { candidatesOf, PREVIEW_CSP, previewsOf, retryablePhases, rubricsOf, sandboxedDocument } from "./review.js";

function item(name: string, phaseId: string, content: unknown) {
  return create(ReviewItemSchema, {
    name,
    artifact: create(ArtifactRefSchema, { phaseId }),
    content: typeof content === "string" ? content : JSON.stringify(content),
  });
}

const check = (id: string, passed: boolean) => ({ id, passed, detail: `${id} detail` });

const TASK = create(HumanTaskSchema, {
  candidates: ["a", "b"],
  items: [
    item("a", "variant_a", { ops: [] }),
    item("b", "variant_b", { ops: [1] }),
    item("preview", "preview", { a: "<p>a</p>", b: "<p>b</p>" }),
    item("scores", "score", { a: { checks: [check("short", true)], score: 1 }, b: { checks: [check("short", false)], score: 0 } }),
  ],
});

describe("a review's items", () => {
  it("finds the rubric checks and previews of every candidate", () => {
    expect(candidatesOf(TASK)).toEqual(["a", "b"]);
    expect(rubricsOf(TASK).get("b")).toEqual({ score: 0, checks: [{ id: "short", passed: false, detail: "short detail" }] });
    expect(previewsOf(TASK).get("a")).toBe("<p>a</p>");
    const bare = create(HumanTaskSchema, { candidates: ["a"], items: [item("a", "x", { ok: 1 })] });
    expect(rubricsOf(bare).size).toBe(0);
    expect(previewsOf(bare).size).toBe(0);
  });

  it("offers the phases behind the items for a retry, the candidates' first", () => {
    expect(retryablePhases(TASK)).toEqual([
      { phaseId: "variant_a", candidate: true },
      { phaseId: "variant_b", candidate: true },
      { phaseId: "preview", candidate: false },
      { phaseId: "score", candidate: false },
    ]);
  });

  it("puts the strict policy first in a preview's head", () => {
    const doc = sandboxedDocument('<!doctype html><html><head><meta charset="utf-8"><script>alert(1)</script></head><body>x</body></html>');
    expect(doc.indexOf("Content-Security-Policy")).toBeLessThan(doc.indexOf("charset"));
    expect(doc).toContain(PREVIEW_CSP);
    expect(PREVIEW_CSP).toContain("default-src 'none'");
    expect(PREVIEW_CSP).not.toContain("script-src");
    const bare = sandboxedDocument("<header>x</header>");
    expect(bare.startsWith("<!doctype html><html><head><meta http-equiv")).toBe(true);
    expect(bare).toContain("<body><header>x</header></body>");
  });
});
