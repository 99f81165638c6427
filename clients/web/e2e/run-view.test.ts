/**
 * The run view in Chromium against a real `orchestra up`, with the
 * Backtrack example: nodes with title, kind, state, attempt, elapsed time
 * and provider; the top bar's state, elapsed time, connection and cancel;
 * the timeline under the graph (whole after a reload); the side panel's
 * artifacts with version picker and diff, and attempt history; and a phase
 * whose output broke its schema, shown beside the schema.
 */
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";

import { expectState, launch, shot, WAIT_MS, watchedPage } from "./page.js";
import { Up } from "./server.js";

let up: Up;
let browser: Browser;
beforeAll(async () => {
  up = await Up.start();
  browser = await launch();
});
afterAll(async () => {
  await browser?.close();
  await up?.dispose();
});

const BROKEN = `name: web-e2e-broken
description: A function whose output breaks its schema
phases:
  - id: a
    title: Gather
    kind: function
    function: json.merge
    output:
      name: gathered
      schema: { type: object, required: [headline], properties: { headline: { type: string } } }
    retry: { max_attempts: 1 }
`;

it("shows a Backtrack run: graph, top bar, timeline, artifacts with versions and diff", async () => {
  const problems: string[] = [];
  const runId = up.startBacktrack();
  const page = await watchedPage(browser, problems);
  await page.goto(`${up.url}/#/runs/${runId}`);
  await expectState(page, "context", "waiting for a person");
  await page.getByTestId("connection").getByText("live").waitFor({ timeout: WAIT_MS });
  await page.getByTestId("run-status").getByText("waiting for a person").waitFor({ timeout: WAIT_MS });
  const variant = await page.getByTestId("phase-variant_a").innerText();
  for (const text of ["Variant A (careful)", "llm", "offline", "blocked", "not run yet"]) expect(variant).toContain(text);
  await page.getByRole("button", { name: "Cancel run…" }).waitFor();

  up.cli("input", "submit", await up.task(runId, "context"), Up.backtrackContext());
  await expectState(page, "variant_a", "completed");
  await expectState(page, "variant_b", "completed");
  await expectState(page, "review", "ready for review");
  const done = await page.getByTestId("phase-variant_b").innerText();
  for (const text of ["Variant B (bold)", "completed", "attempt 1", "offline"]) expect(done).toContain(text);
  expect(done).toMatch(/\d+ s/);

  // The timeline lists the run's events with times; a phase's event selects it.
  const timeline = page.getByTestId("timeline");
  await timeline.getByText("run started: backtrack-ui-patch v1").waitFor({ timeout: WAIT_MS });
  await timeline.getByText(/Variant B \(bold\) running → completed/).first().click();
  const panel = page.getByRole("complementary");
  await panel.getByRole("heading", { name: "Variant B (bold)" }).waitFor();
  await panel.getByTestId("content-variant").waitFor({ timeout: WAIT_MS });
  expect(await panel.getByTestId("content-variant").innerText()).toContain('"ops"');
  await panel.getByTestId("attempts").getByText("#1").waitFor();

  // Both variants are versions of one artifact: compare them.
  const compare = panel.getByTestId("compare-variant");
  const other = await compare.locator("option", { hasText: "variant_a" }).getAttribute("value");
  await compare.selectOption(other ?? "");
  await panel.getByTestId("json-diff").waitFor({ timeout: WAIT_MS });
  await shot(page, "run-view");

  // A reload rebuilds the page, the whole timeline included.
  await page.reload();
  await expectState(page, "review", "ready for review");
  await page.getByTestId("timeline").getByText("run started: backtrack-ui-patch v1").waitFor({ timeout: WAIT_MS });
  await page.getByTestId("timeline").locator('li[data-seq="1"]').waitFor();

  // Cancel, confirmed.
  await page.getByRole("button", { name: "Cancel run…" }).click();
  await page.getByRole("button", { name: "Yes, cancel the run" }).click();
  await page.getByTestId("run-status").getByText("cancelled").waitFor({ timeout: WAIT_MS });
  await expect.poll(() => page.getByRole("button", { name: "Cancel run…" }).count()).toBe(0);
  await shot(page, "run-cancelled");
  expect(problems).toEqual([]);
  await page.close();
});

it("shows an output that broke its schema beside the schema", async () => {
  const problems: string[] = [];
  const runId = up.startTemplate("web-e2e-broken", BROKEN);
  const page = await watchedPage(browser, problems);
  await page.goto(`${up.url}/#/runs/${runId}`);
  await expectState(page, "a", "error");
  await page.getByTestId("run-status").getByText("failed").waitFor({ timeout: WAIT_MS });
  await page.getByTestId("phase-a").click();
  const broke = page.getByTestId("schema-break");
  await broke.waitFor({ timeout: WAIT_MS });
  const text = await broke.innerText();
  for (const part of ["raw output", "schema", '"headline"', "required"]) expect(text).toContain(part);
  expect(await page.getByTestId("phase-error").innerText()).toContain("breaks its schema");
  await shot(page, "schema-break");
  expect(problems).toEqual([]);
  await page.close();
});
