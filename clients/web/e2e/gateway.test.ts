/**
 * The page through `orchestra-gateway` in front of the split mesh (every
 * service its own process): the gateway serves the client, and the page's
 * grpc-web calls and streams (WatchRun, WatchInbox) reach the services
 * that own them. The Backtrack run goes from the context form to the
 * approved, merged end, all in the page.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

import type { Browser } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";

import { expectState, launch, shot, WAIT_MS, watchedPage } from "./page.js";
import { Up } from "./server.js";
import { Split } from "./split.js";

let split: Split;
let browser: Browser;
beforeAll(async () => {
  split = await Split.start();
  browser = await launch();
});
afterAll(async () => {
  await browser?.close();
  await split?.dispose();
});

it("runs Backtrack through the gateway in front of the split mesh", async () => {
  const problems: string[] = [];
  split.cli("template", "apply", join(process.cwd(), "../../examples/backtrack/template.yaml"));
  const page = await watchedPage(browser, problems);
  await page.goto(`${split.url}/#/templates/backtrack-ui-patch`);
  await page.getByTestId("definition-merge").waitFor({ timeout: WAIT_MS });
  await page.getByRole("button", { name: "Start run" }).click();
  await expectState(page, "context", "waiting for a person");
  await page.getByTestId("connection").getByText("live").waitFor({ timeout: WAIT_MS });

  // The inbox's stream through the gateway counts the task; its form submits.
  const count = page.getByTestId("nav-inbox").locator(".count");
  await expect.poll(() => count.innerText(), { timeout: WAIT_MS }).toBe("1");
  await page.getByTestId("phase-context").click();
  await page.getByRole("link", { name: "Open the form" }).click();
  await page.getByRole("tab", { name: "Paste JSON" }).click();
  await page.getByLabel("The whole answer as JSON; it fills the form.").fill(readFileSync(Up.backtrackContext(), "utf8"));
  await page.getByRole("button", { name: "Fill the form" }).click();
  await page.getByRole("button", { name: "Submit" }).click();
  await page.getByTestId("form-failure").waitFor({ timeout: WAIT_MS });
  expect(await page.getByTestId("form-failure").innerText()).toContain("Fill in your name");
  await page.getByLabel("Your name").fill("grace");
  await page.getByRole("button", { name: "Submit" }).click();
  await page.getByTestId("task-closed").getByText("Done").waitFor({ timeout: WAIT_MS });
  await page.getByRole("link", { name: "Back to the run" }).click();
  await expectState(page, "review", "ready for review");

  // The review's items come from the artifact store through the review service.
  await page.getByTestId("phase-review").click();
  await page.getByRole("link", { name: "Open the review" }).click();
  await page.getByTestId("candidate-b").waitFor({ timeout: WAIT_MS });
  await page.getByRole("radio", { name: "b" }).check();
  await page.getByRole("button", { name: "Approve b" }).click();
  await page.getByTestId("task-closed").getByText("Done: approved b").waitFor({ timeout: WAIT_MS });
  await page.getByRole("link", { name: "Back to the run" }).click();
  await expectState(page, "merge", "completed");
  await page.getByTestId("run-status").getByText("completed").waitFor({ timeout: WAIT_MS });
  await page.getByTestId("phase-merge").click();
  await page.getByRole("complementary").getByTestId("content-parent").waitFor({ timeout: WAIT_MS });
  await shot(page, "gateway");
  expect(problems).toEqual([]);
  await page.close();
});
