/**
 * A real `orchestra up` for the end-to-end tests: the debug binary on a
 * free port with a fresh data dir, serving this client's build, plus the
 * CLI against it. Stopping and starting it again on the same port and data
 * is how the tests drop every connection mid-run.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const web = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const repo = resolve(web, "../..");

/** The `orchestra` binary: ORCHESTRA_BIN, or the debug build in the Cargo target dir. */
export const ORCHESTRA_BIN =
  process.env.ORCHESTRA_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(repo, "target"), "debug", "orchestra");

/** The built client the server serves. */
export const WEB_DIST = join(web, "dist");

/** Four function phases in a diamond: a, then b and c, then d. */
export const DIAMOND = `name: web-e2e-diamond
description: The web client's end-to-end run
phases:
  - { id: a, title: Gather, kind: function, function: json.merge }
  - { id: b, title: Left branch, kind: function, function: json.merge, needs: [a] }
  - { id: c, title: Right branch, kind: function, function: json.merge, needs: [a] }
  - { id: d, title: Join, kind: function, function: json.merge, needs: [b, c] }
`;

/** A running (or stopped) `orchestra up`. */
export class Up {
  readonly url: string;
  /** The URL `orchestra up` printed for a browser to open (its last line). */
  browserUrl = "";
  private child: ChildProcess | null = null;
  private output = "";

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly env: Record<string, string>,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  /** Starts one on a free port with a new data dir, and `env` besides. */
  static async start(env: Record<string, string> = {}): Promise<Up> {
    if (!existsSync(ORCHESTRA_BIN)) {
      throw new Error(`no orchestra binary at ${ORCHESTRA_BIN}: run cargo build --bin orchestra, or set ORCHESTRA_BIN`);
    }
    const up = new Up(await freePort(), mkdtempSync(join(tmpdir(), "orchestra-web-e2e-")), env);
    await up.startAgain();
    return up;
  }

  /** Starts the process (again) on the same port and data. */
  async startAgain(): Promise<void> {
    this.output = "";
    const child = spawn(ORCHESTRA_BIN, ["up", "--listen", `127.0.0.1:${this.port}`, "--data-dir", join(this.dir, "data")], {
      env: { ...process.env, ORCHESTRA_WEB_DIR: WEB_DIST, RUST_LOG: process.env.RUST_LOG ?? "warn", ...this.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout?.on("data", (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr?.on("data", (chunk: Buffer) => (this.output += chunk.toString()));
    this.child = child;
    const deadline = Date.now() + 30_000;
    while (!/open in a browser: +(\S+)\n/.test(this.output)) {
      if (child.exitCode !== null) throw new Error(`orchestra up exited (${child.exitCode}):\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`orchestra up did not come up:\n${this.output}`);
      await new Promise((done) => setTimeout(done, 50));
    }
    this.browserUrl = /open in a browser: +(\S+)\n/.exec(this.output)?.[1] ?? "";
  }

  /** Stops the process (SIGTERM, as Ctrl-C would) and waits for it to exit. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((done) => child.once("exit", done));
    child.kill("SIGTERM");
    await exited;
  }

  /** Runs the CLI against this server and returns its standard output. */
  cli(...args: string[]): string {
    return execFileSync(ORCHESTRA_BIN, ["--server", this.url, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  }

  /** Applies {@link DIAMOND} and starts a run of it whose phases each wait for `run continue`. */
  startManualDiamond(): string {
    const file = join(this.dir, "diamond.yaml");
    writeFileSync(file, DIAMOND);
    this.cli("template", "apply", file);
    const started = JSON.parse(this.cli("--output", "json", "run", "start", "web-e2e-diamond", "--manual")) as {
      run: { id: string };
    };
    return started.run.id;
  }

  /** Applies the Backtrack example and starts a run of it; returns the run's id. */
  startBacktrack(): string {
    this.cli("template", "apply", join(repo, "examples/backtrack/template.yaml"));
    return this.cli("run", "start", "backtrack-ui-patch").trim().split("\n")[0].trim();
  }

  /** Applies a template given as YAML text and starts a run of it; returns the run's id. */
  startTemplate(name: string, yaml: string): string {
    const file = join(this.dir, `${name}.yaml`);
    writeFileSync(file, yaml);
    this.cli("template", "apply", file);
    return this.cli("run", "start", name).trim().split("\n")[0].trim();
  }

  /** The id of the open human task of a run's phase, once there is one. */
  async task(runId: string, phaseId: string): Promise<string> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const inbox = JSON.parse(this.cli("--output", "json", "inbox")) as {
        tasks?: { id: string; key: { runId: string; phaseId: string } }[];
      };
      // An empty inbox prints no `tasks` at all (proto3 JSON).
      const found = (inbox.tasks ?? []).find((t) => t.key.runId === runId && t.key.phaseId === phaseId);
      if (found) return found.id;
      if (Date.now() > deadline) throw new Error(`no task for ${runId}/${phaseId}`);
      await new Promise((done) => setTimeout(done, 200));
    }
  }

  /** The Backtrack example's context form, filled in. */
  static backtrackContext(): string {
    return join(repo, "examples/backtrack/inputs/context.json");
  }

  /** What the process printed, for a failure's message. */
  log(): string {
    return this.output;
  }

  /** Stops the process and removes its data. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A port nothing listens on now. */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => done(port));
    });
  });
}
