/**
 * Templates in Chromium against a real `orchestra up`: the gallery, a
 * template's graph before it runs and a run started from it (with a form
 * for its inputs); the editor with YAML beside the live graph, each fault
 * the server finds shown at its line, and saving new versions.
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

const WITH_INPUT = `name: web-e2e-brief
description: Takes a brief when it starts
inputs:
  brief:
    description: What to do
    schema: { type: object, required: [text], properties: { text: { type: string, minLength: 3 } } }
phases:
  - id: gather
    title: Gather
    kind: function
    function: json.merge
    inputs: { brief: input.brief }
  - id: check
    title: Check
    kind: function
    function: json.merge
    needs: [gathr]
`;

it("starts a run from the gallery, the graph shown first", async () => {
  const problems: string[] = [];
  up.cli("template", "apply", `${process.cwd()}/../../examples/backtrack/template.yaml`);
  const page = await watchedPage(browser, problems);
  await page.goto(up.browserUrl);
  await page.getByRole("link", { name: "Templates" }).click();
  await page.getByTestId("template-card").filter({ hasText: "backtrack-ui-patch" }).click();
  for (const id of ["context", "variant_a", "variant_b", "score", "preview", "review", "merge"]) {
    await page.getByTestId(`definition-${id}`).waitFor({ timeout: WAIT_MS });
  }
  await page.getByText("This template takes no inputs.").waitFor();
  await shot(page, "template");
  await page.getByRole("button", { name: "Start run" }).click();
  await expectState(page, "context", "waiting for a person");
  expect(page.url()).toMatch(/#\/runs\//);

  // Its source refers to schema and prompt files; the editor validates it
  // with them, recovered from the stored spec.
  await page.goto(`${up.url}/#/templates/backtrack-ui-patch/edit`);
  await page.getByTestId("validation-state").getByText("valid").waitFor({ timeout: WAIT_MS });
  await page.getByTestId("template-graph").getByTestId("definition-merge").waitFor({ timeout: WAIT_MS });
  expect(problems).toEqual([]);
  await page.close();
});

it("edits a template with its faults at their lines, saves versions, and starts it with inputs", async () => {
  const problems: string[] = [];
  const page = await watchedPage(browser, problems);
  await page.goto(`${up.url}/#/templates`);
  await page.getByRole("link", { name: "New template" }).click();
  await page.getByTestId("validation-state").getByText("valid").waitFor({ timeout: WAIT_MS });
  const source = page.getByLabel("Template source (YAML)");
  await source.fill(WITH_INPUT);
  const faults = page.getByTestId("faults");
  await faults.waitFor({ timeout: WAIT_MS });
  expect(await faults.innerText()).toMatch(/line 17/);
  expect(await faults.innerText()).toContain("gathr");
  expect(await page.getByRole("button", { name: "Save" }).isDisabled()).toBe(true);
  await shot(page, "editor-fault");
  await faults.getByRole("button", { name: "line 17" }).click();
  await source.fill(WITH_INPUT.replace("[gathr]", "[gather]"));
  await page.getByTestId("validation-state").getByText("valid").waitFor({ timeout: WAIT_MS });
  await page.getByTestId("template-graph").getByTestId("definition-check").waitFor({ timeout: WAIT_MS });
  await page.getByRole("button", { name: "Save" }).click();

  // Stored as version 1; edit it again into version 2.
  await page.getByRole("heading", { name: "web-e2e-brief" }).waitFor({ timeout: WAIT_MS });
  await page.getByRole("link", { name: "Edit" }).click();
  await page.getByTestId("validation-state").getByText("valid").waitFor({ timeout: WAIT_MS });
  await source.fill(WITH_INPUT.replace("[gathr]", "[gather]").replace("Takes a brief", "Takes a short brief"));
  await page.getByTestId("validation-state").getByText("valid").waitFor({ timeout: WAIT_MS });
  await page.getByRole("button", { name: "Save as a new version" }).click();
  await page.getByText("Takes a short brief when it starts").waitFor({ timeout: WAIT_MS });
  expect(await page.getByTestId("template-version").inputValue()).toBe("2");
  expect(await page.getByTestId("template-version").locator("option").allInnerTexts()).toEqual(["v2 (latest)", "v1"]);

  // Its input has a form; the run starts with it.
  await page.locator("#root_brief_text").fill("tidy the hero");
  await page.getByRole("button", { name: "Start run" }).click();
  await expectState(page, "check", "completed");
  await page.getByTestId("run-status").getByText("completed").waitFor({ timeout: WAIT_MS });
  expect(problems).toEqual([]);
  await page.close();
});
