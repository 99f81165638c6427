/**
 * CORS as a browser enforces it: a page from an origin listed in
 * ORCHESTRA_WEB_ORIGINS calls `orchestra up` over grpc-web and reads the
 * answer; the same page from an origin not listed is refused by Chromium
 * itself.
 */
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";

import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";

import { freePort, Up } from "./server.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

let up: Up;
let browser: Browser;
let pages: Server[] = [];
let allowedPort = 0;
let otherPort = 0;

/** A site that serves one blank page on `port`. */
function site(port: number): Promise<Server> {
  const server = createServer((_, response) => {
    response.writeHead(200, { "content-type": "text/html" });
    response.end("<!doctype html><title>another site</title>");
  });
  return new Promise((done) => server.listen(port, "127.0.0.1", () => done(server)));
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium`);
  allowedPort = await freePort();
  otherPort = await freePort();
  pages = [await site(allowedPort), await site(otherPort)];
  up = await Up.start({ ORCHESTRA_WEB_ORIGINS: `http://127.0.0.1:${allowedPort}` });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});
afterAll(async () => {
  await browser?.close();
  await up?.dispose();
  for (const page of pages) page.close();
});

/** From a page on `port`, an empty ListTemplates over grpc-web; what the page could read. */
async function callFrom(port: number): Promise<string> {
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${port}/`);
  const result = await page.evaluate(async (url) => {
    try {
      const response = await fetch(`${url}/orchestra.v1.TemplateService/ListTemplates`, {
        method: "POST",
        headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" },
        body: new Uint8Array([0, 0, 0, 0, 0]),
      });
      return `${response.status} grpc-status=${response.headers.get("grpc-status") ?? "in trailers"}`;
    } catch (error) {
      return `refused: ${String(error)}`;
    }
  }, up.url);
  await page.close();
  return result;
}

it("lets a listed origin call and the browser refuses any other", async () => {
  expect(await callFrom(allowedPort)).toMatch(/^200 /);
  expect(await callFrom(otherPort)).toMatch(/^refused: TypeError/);
});
