/**
 * The runs dashboard in Chromium against a real `orchestra up`: state,
 * template, started and duration per run; filters by state and template
 * that a reload keeps; paging through more runs than a page holds.
 */
import { execFileSync } from "node:child_process";

import type { Browser } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";

import { launch, shot, WAIT_MS, watchedPage } from "./page.js";
import { ORCHESTRA_BIN, Up } from "./server.js";

const BROKEN = `name: web-e2e-broken
description: A function whose output breaks its schema
phases:
  - id: a
    kind: function
    function: json.merge
    output: { name: gathered, schema: { type: object, required: [headline] } }
    retry: { max_attempts: 1 }
`;

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

it("lists runs with state and duration, filtered and paged", async () => {
  const failed = up.startTemplate("web-e2e-broken", BROKEN);
  const waiting = up.startBacktrack();
  up.startManualDiamond();
  for (let i = 0; i < 24; i++) {
    execFileSync(ORCHESTRA_BIN, ["--server", up.url, "run", "start", "web-e2e-diamond", "--manual"], { stdio: "ignore" });
  }
  const problems: string[] = [];
  const page = await watchedPage(browser, problems);
  await page.goto(up.browserUrl);
  const rows = page.getByTestId("run-row");
  await expect.poll(() => rows.count(), { timeout: WAIT_MS }).toBe(25);
  await page.getByRole("button", { name: "Older →" }).click();
  await expect.poll(() => rows.count(), { timeout: WAIT_MS }).toBe(2);
  expect(await page.getByText("page 2").count()).toBe(1);
  await page.getByRole("button", { name: "← Newer" }).click();
  await expect.poll(() => rows.count(), { timeout: WAIT_MS }).toBe(25);

  // By state: only the failed run, and the filter is in the address.
  await page.getByTestId("filter-state").selectOption("failed");
  await expect.poll(() => rows.count(), { timeout: WAIT_MS }).toBe(1);
  expect(await rows.first().innerText()).toContain(failed);
  expect(await rows.first().innerText()).toContain("failed");
  expect(page.url()).toContain("state=failed");
  await page.reload();
  await expect.poll(() => rows.count(), { timeout: WAIT_MS }).toBe(1);
  expect(await page.getByTestId("filter-state").inputValue()).toBe("failed");

  // By template.
  await page.getByRole("button", { name: "Clear filters" }).click();
  await page.getByTestId("filter-template").selectOption("backtrack-ui-patch");
  await expect.poll(() => rows.count(), { timeout: WAIT_MS }).toBe(1);
  const row = await rows.first().innerText();
  for (const text of [waiting, "backtrack-ui-patch", "waiting for a person"]) expect(row).toContain(text);
  expect(await rows.first().getByTestId("run-duration").innerText()).toMatch(/^\d+ s$/);

  // Nothing matches: said so.
  await page.getByTestId("filter-state").selectOption("completed");
  await page.getByText("No runs match these filters.").waitFor({ timeout: WAIT_MS });
  await page.getByRole("button", { name: "Clear filters" }).click();
  await expect.poll(() => rows.count(), { timeout: WAIT_MS }).toBe(25);
  await shot(page, "dashboard");
  expect(problems).toEqual([]);
  await page.close();
});
