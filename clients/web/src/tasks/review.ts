/**
 * What a review shows, read from its items: each candidate's content, the
 * rubric checks the scoring phase wrote for it, the preview page rendered
 * for it, and the phases a retry may send back. Previews become documents
 * for a sandboxed iframe with a strict Content-Security-Policy: no
 * scripts, no requests, nothing but inline styles and data images. Pure.
 */
import type { HumanTask } from "../gen/orchestra/v1/review_pb.js";

/** One rubric check of one candidate. */
export interface Check {
  id: string;
  passed: boolean;
  detail: string;
}

/** A candidate's rubric result. */
export interface Rubric {
  score?: number;
  checks: Check[];
}

/** The policy every preview document runs under. */
export const PREVIEW_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; form-action 'none'; base-uri 'none'";

/** An item's content parsed as JSON, or undefined. */
function itemJson(task: HumanTask, name: string): unknown {
  const item = task.items.find((i) => i.name === name);
  if (!item?.content) return undefined;
  try {
    return JSON.parse(item.content) as unknown;
  } catch {
    return undefined;
  }
}

/** The names under review that an approval can pick (every item when none are named). */
export function candidatesOf(task: HumanTask): string[] {
  return task.candidates.length > 0 ? task.candidates : task.items.map((i) => i.name);
}

/**
 * The rubric result of each candidate: from an item that maps every
 * candidate to `{checks: [{id, passed, detail}], score}` (the scoring
 * phase's output).
 */
export function rubricsOf(task: HumanTask): Map<string, Rubric> {
  const candidates = candidatesOf(task);
  for (const item of task.items) {
    if (candidates.includes(item.name)) continue;
    const value = itemJson(task, item.name);
    if (!value || typeof value !== "object") continue;
    const record = value as Record<string, unknown>;
    if (!candidates.every((c) => isRubric(record[c]))) continue;
    return new Map(candidates.map((c) => [c, toRubric(record[c])]));
  }
  return new Map();
}

/** The preview page of each candidate: from an item that maps every candidate to HTML text. */
export function previewsOf(task: HumanTask): Map<string, string> {
  const candidates = candidatesOf(task);
  for (const item of task.items) {
    if (candidates.includes(item.name)) continue;
    const value = itemJson(task, item.name);
    if (!value || typeof value !== "object") continue;
    const record = value as Record<string, unknown>;
    if (candidates.every((c) => typeof record[c] === "string")) {
      return new Map(candidates.map((c) => [c, record[c] as string]));
    }
  }
  return new Map();
}

/** The phases a retry may send back: those that produced the items, candidates' first. */
export function retryablePhases(task: HumanTask): { phaseId: string; candidate: boolean }[] {
  const candidates = new Set(candidatesOf(task));
  const seen = new Map<string, boolean>();
  for (const item of task.items) {
    const phaseId = item.artifact?.phaseId;
    if (!phaseId) continue;
    seen.set(phaseId, (seen.get(phaseId) ?? false) || candidates.has(item.name));
  }
  return [...seen.entries()]
    .map(([phaseId, candidate]) => ({ phaseId, candidate }))
    .sort((a, b) => Number(b.candidate) - Number(a.candidate) || a.phaseId.localeCompare(b.phaseId));
}

/**
 * A preview page ready for `<iframe sandbox srcdoc>`: the policy first in
 * its head, so nothing in the page (a script, an image from the network, a
 * form) can run or reach anywhere, whatever the page says.
 */
export function sandboxedDocument(html: string): string {
  const meta = `<meta http-equiv="Content-Security-Policy" content="${PREVIEW_CSP}">`;
  const head = /<head(\s[^>]*)?>/i.exec(html);
  if (head) return html.slice(0, head.index + head[0].length) + meta + html.slice(head.index + head[0].length);
  return `<!doctype html><html><head>${meta}</head><body>${html}</body></html>`;
}

function isRubric(value: unknown): boolean {
  return !!value && typeof value === "object" && Array.isArray((value as { checks?: unknown }).checks);
}

function toRubric(value: unknown): Rubric {
  const record = value as { checks: unknown[]; score?: unknown };
  return {
    score: typeof record.score === "number" ? record.score : undefined,
    checks: record.checks.map((c) => {
      const check = (c ?? {}) as Record<string, unknown>;
      return { id: String(check.id ?? ""), passed: check.passed === true, detail: String(check.detail ?? "") };
    }),
  };
}
