/**
 * People's work in the page, against a real `orchestra up` running the
 * Backtrack example: the inbox's count in the navigation moves live; the
 * context form, generated from its schema, shows the server's field error
 * at its field, then submits; the run page shows the variants complete
 * live; the review workbench shows the candidates side by side with rubric,
 * sandboxed previews and diff; the review is decided from the keyboard,
 * and a second browser context on the run sees the decision and the merge
 * live.
 */
import { readFileSync } from "node:fs";

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

it("runs the Backtrack story in the page: context form, live graph, review, decision seen elsewhere", async () => {
  const problems: string[] = [];
  const page = await watchedPage(browser, problems);
  await page.goto(up.browserUrl);
  const count = page.getByTestId("nav-inbox").locator(".count");
  await expect.poll(() => count.innerText(), { timeout: WAIT_MS }).toBe("0");

  const runId = up.startBacktrack();
  await expect.poll(() => count.innerText(), { timeout: WAIT_MS }).toBe("1");
  await page.getByTestId("nav-inbox").click();
  await page.getByRole("link", { name: "Write the context" }).click();
  await page.getByLabel("Your name").fill("ada");

  // First with a value the schema refuses: the server's violation shows at the field.
  const context = JSON.parse(readFileSync(Up.backtrackContext(), "utf8")) as { intent: string };
  await page.getByRole("tab", { name: "Paste JSON" }).click();
  await page.getByLabel("The whole answer as JSON; it fills the form.").fill(JSON.stringify({ ...context, intent: "short" }, null, 2));
  await page.getByRole("button", { name: "Fill the form" }).click();
  await page.getByRole("button", { name: "Submit" }).click();
  await page.getByTestId("form-failure").waitFor({ timeout: WAIT_MS });
  const intentGroup = page.locator(".form-group", { has: page.locator("#root_intent") }).last();
  await intentGroup.locator(".error-detail").waitFor({ timeout: WAIT_MS });
  expect(await page.locator("#root_intent").getAttribute("aria-describedby")).toContain("root_intent__error");
  expect(await intentGroup.innerText()).toMatch(/shorter than 10 characters/);
  await page.locator("#root_intent").scrollIntoViewIfNeeded();
  await shot(page, "context-field-error");

  // Mend it in the form itself and submit.
  await page.locator("#root_intent").fill(context.intent);
  await page.getByRole("button", { name: "Submit" }).click();
  await page.getByTestId("task-closed").getByText("Done").waitFor({ timeout: WAIT_MS });

  // The run page shows the variants go from running to completed, live.
  await page.getByRole("link", { name: "Back to the run" }).click();
  await expectState(page, "context", "completed");
  await expectState(page, "variant_a", "completed");
  await expectState(page, "variant_b", "completed");
  await expectState(page, "review", "ready for review");
  await expect.poll(() => count.innerText(), { timeout: WAIT_MS }).toBe("1");

  // A second person watches the same run elsewhere.
  const other = await browser.newContext();
  const otherProblems: string[] = [];
  const watcher = await other.newPage();
  watcher.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") otherProblems.push(m.text());
  });
  await watcher.goto(`${up.url}/#/runs/${runId}`);
  await expectState(watcher, "review", "ready for review");

  // The review workbench.
  await page.getByTestId("phase-review").click();
  await page.getByRole("link", { name: "Open the review" }).click();
  const a = page.getByTestId("candidate-a");
  const b = page.getByTestId("candidate-b");
  await a.waitFor({ timeout: WAIT_MS });
  await b.waitFor();
  const [boxA, boxB] = [await a.boundingBox(), await b.boundingBox()];
  expect(boxA && boxB && boxB.x > boxA.x + boxA.width - 1 && Math.abs(boxA.y - boxB.y) < 2).toBe(true);
  expect(await a.getByRole("list", { name: "Rubric of a" }).innerText()).toContain("✓ pass");
  const preview = page.getByTestId("preview-a");
  expect(await preview.getAttribute("sandbox")).toBe("");
  expect(await preview.getAttribute("srcdoc")).toContain("default-src 'none'");
  const frame = page.frameLocator('[data-testid="preview-a"]');
  await frame.locator("main[data-slot=hero]").waitFor({ timeout: WAIT_MS });
  await page.getByTestId("json-diff").waitFor({ timeout: WAIT_MS });
  await shot(page, "review");

  // Decided from the keyboard: pick a, then approve.
  await page.getByRole("radio", { name: "a" }).focus();
  await page.keyboard.press("Space");
  expect(await page.getByRole("radio", { name: "a" }).isChecked()).toBe(true);
  await page.getByRole("button", { name: "Approve a" }).focus();
  await page.keyboard.press("Enter");
  await page.getByTestId("task-closed").getByText("Done: approved a by ada").waitFor({ timeout: WAIT_MS });
  await expect.poll(() => count.innerText(), { timeout: WAIT_MS }).toBe("0");

  // The other context sees the decision and the merge, live.
  await expectState(watcher, "review", "approved");
  await expectState(watcher, "merge", "completed");
  await watcher.getByTestId("run-status").getByText("completed").waitFor({ timeout: WAIT_MS });
  await watcher.screenshot({ path: `${process.env.E2E_SCREENSHOT_DIR ?? "/tmp"}/web-e2e-decision-seen-elsewhere.png` });
  await other.close();

  expect(problems).toEqual([]);
  expect(otherProblems).toEqual([]);
  await page.close();
});

it("sends the variants back with a comment, and the run shows their second attempts", async () => {
  const problems: string[] = [];
  const runId = up.startBacktrack();
  up.cli("input", "submit", await up.task(runId, "context"), Up.backtrackContext());
  const page = await watchedPage(browser, problems);
  await page.goto(`${up.url}/#/tasks/${await up.task(runId, "review")}`);
  await page.getByLabel("Your name").fill("lin");
  await page.getByTestId("candidate-a").waitFor({ timeout: WAIT_MS });
  for (const phase of ["variant_a", "variant_b"]) expect(await page.getByRole("checkbox", { name: phase }).isChecked()).toBe(true);
  expect(await page.getByRole("checkbox", { name: "score" }).isChecked()).toBe(false);
  await page.getByLabel(/^Comment/).fill("shorter labels, please");
  await page.getByRole("button", { name: "Retry with comment" }).click();
  await page.getByTestId("task-closed").getByText("Done: sent back for a retry by lin").waitFor({ timeout: WAIT_MS });

  await page.getByRole("link", { name: "Back to the run" }).click();
  await page.locator('[data-testid="phase-variant_a"]', { hasText: "attempt 2" }).waitFor({ timeout: WAIT_MS });
  await expectState(page, "variant_a", "completed");
  await expectState(page, "review", "ready for review");
  await page.getByTestId("phase-variant_a").click();
  const attempts = page.getByTestId("attempts");
  await attempts.getByText("#2").waitFor({ timeout: WAIT_MS });
  expect(await attempts.innerText()).toContain("#1 completed, then sent back");
  expect(await attempts.innerText()).toContain("shorter labels, please");
  await shot(page, "retried");
  expect(problems).toEqual([]);
  await page.close();
});
