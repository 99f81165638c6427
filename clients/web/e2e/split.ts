/**
 * The split mesh for the browser tests: the four service binaries, each
 * its own process on a free port with its own SQLite file, and
 * `orchestra-gateway` in front of them serving this client's build. The
 * binaries sit beside `orchestra` (ORCHESTRA_BIN's folder).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

import { freePort, ORCHESTRA_BIN, WEB_DIST } from "./server.js";

const BIN_DIR = dirname(ORCHESTRA_BIN);

/** A running split mesh behind its gateway. */
export class Split {
  private constructor(
    readonly url: string,
    readonly dir: string,
    private readonly children: ChildProcess[],
    private readonly output: string[],
  ) {}

  /** Starts every service and the gateway; resolves once the gateway serves the page and a call. */
  static async start(): Promise<Split> {
    for (const name of ["orchestra-scheduler", "orchestra-artifact-store", "orchestra-review", "orchestra-phase-executor", "orchestra-gateway"]) {
      if (!existsSync(join(BIN_DIR, name))) throw new Error(`no ${name} in ${BIN_DIR}: cargo build --bins`);
    }
    const dir = mkdtempSync(join(tmpdir(), "orchestra-web-split-"));
    const [scheduler, executor, artifacts, review, gateway] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    const at = (port: number) => `127.0.0.1:${port}`;
    const url = (port: number) => `http://${at(port)}`;
    const output: string[] = [];
    const run = (name: string, env: Record<string, string>) => {
      const child = spawn(join(BIN_DIR, name), [], {
        env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn", ...env },
        stdio: ["ignore", "pipe", "pipe"],
      });
      child.stdout?.on("data", (chunk: Buffer) => output.push(`${name}: ${chunk.toString()}`));
      child.stderr?.on("data", (chunk: Buffer) => output.push(`${name}: ${chunk.toString()}`));
      return child;
    };
    const children = [
      run("orchestra-artifact-store", {
        ORCHESTRA_ARTIFACT_STORE_LISTEN_ADDR: at(artifacts),
        ORCHESTRA_ARTIFACT_STORE_DATABASE_URL: `sqlite://${join(dir, "artifact_store.db")}`,
        ORCHESTRA_ARTIFACT_STORE_BLOB_DIR: join(dir, "blobs"),
      }),
      run("orchestra-review", {
        ORCHESTRA_REVIEW_LISTEN_ADDR: at(review),
        ORCHESTRA_REVIEW_DATABASE_URL: `sqlite://${join(dir, "review.db")}`,
        ORCHESTRA_REVIEW_SCHEDULER_URL: url(scheduler),
        ORCHESTRA_REVIEW_ARTIFACT_STORE_URL: url(artifacts),
      }),
      run("orchestra-scheduler", {
        ORCHESTRA_SCHEDULER_LISTEN_ADDR: at(scheduler),
        ORCHESTRA_SCHEDULER_DATABASE_URL: `sqlite://${join(dir, "scheduler.db")}`,
        ORCHESTRA_SCHEDULER_REVIEW_URL: url(review),
        ORCHESTRA_SCHEDULER_ARTIFACT_STORE_URL: url(artifacts),
      }),
      run("orchestra-phase-executor", {
        ORCHESTRA_EXECUTOR_LISTEN_ADDR: at(executor),
        ORCHESTRA_EXECUTOR_SCHEDULER_URL: url(scheduler),
        ORCHESTRA_EXECUTOR_ARTIFACT_STORE_URL: url(artifacts),
      }),
      run("orchestra-gateway", {
        ORCHESTRA_GATEWAY_LISTEN_ADDR: at(gateway),
        ORCHESTRA_GATEWAY_SCHEDULER_URL: url(scheduler),
        ORCHESTRA_GATEWAY_ARTIFACT_STORE_URL: url(artifacts),
        ORCHESTRA_GATEWAY_REVIEW_URL: url(review),
        ORCHESTRA_GATEWAY_EXECUTOR_URL: url(executor),
        ORCHESTRA_WEB_DIR: WEB_DIST,
      }),
    ];
    const split = new Split(url(gateway), dir, children, output);
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        split.cli("template", "list");
        const page = await fetch(`${split.url}/`);
        if (page.status === 200) return split;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) {
        await split.dispose();
        throw new Error(`the split mesh did not come up:\n${output.join("")}`);
      }
      await new Promise((done) => setTimeout(done, 200));
    }
  }

  /** Runs the CLI against the gateway (every service through it). */
  cli(...args: string[]): string {
    return execFileSync(ORCHESTRA_BIN, ["--server", this.url, "--review-server", this.url, "--artifact-server", this.url, ...args], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
  }

  /** What the processes printed, for a failure's message. */
  log(): string {
    return this.output.join("");
  }

  /** Stops every process and removes their data. */
  async dispose(): Promise<void> {
    await Promise.all(
      this.children.map(
        (child) =>
          new Promise<void>((done) => {
            if (child.exitCode !== null) return done();
            child.once("exit", () => done());
            child.kill("SIGTERM");
          }),
      ),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }
}
