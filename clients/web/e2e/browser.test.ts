/**
 * The page in headless Chromium against a real `orchestra up`: the runs
 * list links to a run, whose graph shows every phase; as the test moves
 * each phase on with the CLI, the page shows it change, pushed by
 * WatchRun, until every node reads "completed". A reload rebuilds the same
 * page. Screenshots go to E2E_SCREENSHOT_DIR (default /tmp).
 */
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";

import { Up, WEB_DIST } from "./server.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SHOTS = process.env.E2E_SCREENSHOT_DIR ?? tmpdir();
const WAIT_MS = 20_000;

let up: Up;
let browser: Browser;
beforeAll(async () => {
  if (!existsSync(join(WEB_DIST, "index.html"))) throw new Error("the client is not built: npm run build");
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium`);
  up = await Up.start();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});
afterAll(async () => {
  await browser?.close();
  await up?.dispose();
});

function node(page: Page, phase: string) {
  return page.getByTestId(`phase-${phase}`);
}

async function expectState(page: Page, phase: string, label: string): Promise<void> {
  await page.locator(`[data-testid="phase-${phase}"][data-state="${label}"]`).waitFor({ timeout: WAIT_MS });
}

it("shows a run's phases changing live until all have completed", async () => {
  const runId = up.startManualDiamond();
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  const problems: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error" || message.type() === "warning") problems.push(`${message.type()}: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));

  const navigated = Date.now();
  // The URL `orchestra up` printed is the one a person opens.
  expect(up.browserUrl).toBe(`${up.url}/`);
  await page.goto(up.browserUrl);
  await page.getByTestId("run-row").first().waitFor({ timeout: WAIT_MS });
  console.log(`runs list shown ${Date.now() - navigated} ms after navigation`);
  await page.screenshot({ path: join(SHOTS, "web-e2e-runs.png") });
  await page.getByRole("link", { name: runId }).click();
  await expectState(page, "a", "ready");
  await expectState(page, "d", "blocked");
  await page.getByTestId("connection").getByText("live").waitFor({ timeout: WAIT_MS });

  // Each node shows its title, kind, state word and attempt.
  const gather = await node(page, "a").innerText();
  for (const text of ["Gather", "function", "ready", "not run yet"]) expect(gather).toContain(text);
  await page.screenshot({ path: join(SHOTS, "web-e2e-before.png") });

  // Each phase waits to be continued (--manual): a from its panel, b and c
  // together from the top bar, d with the CLI; the page shows each move.
  await node(page, "a").click();
  await page.getByRole("button", { name: "Continue this phase" }).click();
  await expectState(page, "a", "completed");
  await expectState(page, "b", "ready");
  await expectState(page, "c", "ready");
  await page.getByRole("button", { name: "Continue 2 ready phases" }).click();
  await expectState(page, "b", "completed");
  await expectState(page, "c", "completed");
  await expectState(page, "d", "ready");
  up.cli("run", "continue", runId, "d");
  await expectState(page, "d", "completed");
  await page.getByTestId("run-status").getByText("completed").waitFor({ timeout: WAIT_MS });
  const joined = await node(page, "d").innerText();
  for (const text of ["Join", "function", "completed", "attempt 1"]) expect(joined).toContain(text);
  await node(page, "d").click();
  await page.getByRole("complementary").waitFor({ timeout: WAIT_MS });
  // The graph refits to the narrower pane: the last node stays in view.
  await expect
    .poll(async () => {
      const [graph, last] = await Promise.all([page.getByTestId("graph").boundingBox(), node(page, "d").boundingBox()]);
      return graph && last ? last.x + last.width <= graph.x + graph.width : false;
    })
    .toBe(true);
  await page.screenshot({ path: join(SHOTS, "web-e2e.png") });

  // A reload rebuilds the same page from GetRun.
  await page.reload();
  for (const phase of ["a", "b", "c", "d"]) await expectState(page, phase, "completed");
  await page.getByTestId("run-status").getByText("completed").waitFor({ timeout: WAIT_MS });
  await page.emulateMedia({ colorScheme: "dark" });
  await page.screenshot({ path: join(SHOTS, "web-e2e-dark.png") });

  expect(problems).toEqual([]);
  await page.close();
});

it("says so when a run does not exist, instead of retrying for ever", async () => {
  const page = await browser.newPage();
  await page.goto(`${up.url}/#/runs/01a23cd2-0000-7000-8000-000000000000`);
  await page.getByRole("heading", { name: "This run cannot be shown" }).waitFor({ timeout: WAIT_MS });
  const said = await page.getByRole("alert").innerText();
  console.log(`a missing run reads: ${said.replace(/\n+/g, " | ")}`);
  await page.close();
});

it("serves the built client at / on the services' port", async () => {
  const response = await fetch(`${up.url}/`, { headers: { accept: "text/html" } });
  expect(response.status).toBe(200);
  expect(await response.text()).toContain('<div id="root">');
});

it("reconnects by itself when the server restarts mid-run, and shows every event once", async () => {
  const runId = up.startManualDiamond();
  const problems: string[] = [];
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  await page.goto(`${up.url}/#/runs/${runId}`);
  await expectState(page, "a", "ready");
  up.cli("run", "continue", runId, "a");
  await expectState(page, "a", "completed");

  await up.stop();
  await page.getByTestId("connection").getByText("reconnecting…").waitFor({ timeout: WAIT_MS });
  await page.getByRole("alert").getByText("The server cannot be reached").waitFor();
  expect(await page.getByRole("button", { name: "Cancel run…" }).isDisabled()).toBe(true);
  await page.screenshot({ path: join(SHOTS, "web-e2e-reconnecting.png") });
  await up.startAgain();
  await page.getByTestId("connection").getByText("live").waitFor({ timeout: WAIT_MS });
  for (const phase of ["b", "c", "d"]) {
    await expectState(page, phase, "ready");
    up.cli("run", "continue", runId, phase);
    await expectState(page, phase, "completed");
  }
  await page.getByTestId("run-status").getByText("completed").waitFor({ timeout: WAIT_MS });
  // The timeline holds each event once, 1 to the last, in order.
  const seqs = (await page.getByTestId("timeline").locator("li").evaluateAll((items) => items.map((li) => Number(li.getAttribute("data-seq")))));
  expect(seqs).toEqual(seqs.map((_, i) => i + 1));
  expect(seqs.length).toBeGreaterThan(10);
  expect(problems).toEqual([]);
  await page.close();
});
