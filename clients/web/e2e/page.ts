/**
 * What the browser tests share: headless Chromium (Debian's), a page that
 * records every console error and warning, and waiting on a phase node's
 * state.
 */
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { type Browser, chromium, type Page } from "playwright-core";

import { WEB_DIST } from "./server.js";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const SHOTS = process.env.E2E_SCREENSHOT_DIR ?? tmpdir();
export const WAIT_MS = 20_000;

/** Launches Chromium, once the client is built. */
export async function launch(): Promise<Browser> {
  if (!existsSync(join(WEB_DIST, "index.html"))) throw new Error("the client is not built: npm run build");
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** A new page whose console errors and warnings land in `problems`. */
export async function watchedPage(browser: Browser, problems: string[], width = 1440, height = 900): Promise<Page> {
  const page = await browser.newPage({ viewport: { width, height } });
  page.on("console", (message) => {
    // A preview frame's own refusals (its policy blocking an image from the
    // network) are the sandbox working, not the page's faults.
    if (message.location().url === "about:srcdoc") return;
    if (message.type() === "error" || message.type() === "warning") problems.push(`${message.type()}: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  return page;
}

/** Waits until phase `phase`'s node reads `label`. */
export async function expectState(page: Page, phase: string, label: string): Promise<void> {
  await page.locator(`[data-testid="phase-${phase}"][data-state="${label}"]`).waitFor({ timeout: WAIT_MS });
}

/** Saves a screenshot named `name` in the screenshot folder. */
export async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `web-e2e-${name}.png`) });
}
