// The Python sidecar as a child process of ours, spoken to through a SidecarClient (./client.ts). It lives and
// dies with us: it watches its stdin (our pipe), we kill it on exit, and every pending request fails fast if it dies.
// Its ipc socket sits in a private 0700 temp dir that goes with it. A sidecar on another node is ./remote.ts.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { ROOT, pythonPath } from "../paths.js";
import { SPEC } from "../protocol.js";
import { SidecarClient, type ClientOptions } from "./client.js";
import { SidecarDiedError, UltraError } from "./errors.js";

export interface SidecarOptions extends ClientOptions {
  /** "ipc" (default): a socket in a private 0700 temp dir. "tcp": 127.0.0.1 on a free port. */
  transport?: "ipc" | "tcp";
  /** Bind tcp on another address; only when the user asks for it. */
  tcpHost?: string;
  device?: "auto" | "cpu" | "cuda";
  torchThreads?: number;
  python?: string;
  /** Seconds to wait for the sidecar to start (torch import takes a few). */
  startTimeoutS?: number;
  /** Sidecar stderr lines (logs) as they come. */
  onLog?: (line: string) => void;
  /** How kill() stops the process: SIGKILL, or SIGTERM for a sidecar that must clean up (a Ray host stops Ray). */
  stopSignal?: "SIGKILL" | "SIGTERM";
}

// a child must not outlive us, even when we end without closing it
const live = new Set<Sidecar>();
process.on("exit", () => live.forEach((s) => s.kill()));

export class Sidecar extends SidecarClient {
  private readonly stderrTail: string[] = [];

  private constructor(
    readonly proc: ChildProcess,
    /** holds the ipc socket; undefined over tcp */
    private readonly privateDir: string | undefined,
    private readonly opts: SidecarOptions,
  ) {
    super(opts);
  }

  /** Spawn `python -m ultra_sidecar`, wait for its ready line, connect and say hello. */
  static async start(opts: SidecarOptions = {}): Promise<Sidecar> {
    const python = opts.python ?? pythonPath();
    if (!existsSync(python))
      throw new UltraError(
        `Python not found at ${python}. Run \`make setup\` (or set ULTRA_PYTHON to a python with the sidecar installed).`,
      );
    const transport = opts.transport ?? "ipc";
    const privateDir = transport === "ipc" ? mkdtempSync(join(tmpdir(), "ultra-")) : undefined; // mode 0700
    const endpoint = privateDir ? `ipc://${join(privateDir, "sidecar.sock")}` : `tcp://${opts.tcpHost ?? "127.0.0.1"}:0`;
    const args = [
      "-m",
      "ultra_sidecar",
      "--endpoint",
      endpoint,
      "--device",
      opts.device ?? "auto",
      "--torch-threads",
      String(opts.torchThreads ?? 1),
    ];
    const proc = spawn(python, args, {
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, PYTHONPATH: join(ROOT, "py"), PYTHONUNBUFFERED: "1" },
    });
    const sc = new Sidecar(proc, privateDir, opts);
    live.add(sc);
    return sc.open(() => sc.waitReady(opts.startTimeoutS ?? 120));
  }

  /** Resolves with the endpoint the sidecar bound (a tcp port it chose), from its ready line on stdout. */
  private waitReady(timeoutS: number): Promise<string> {
    const proc = this.proc;
    createInterface({ input: proc.stderr! }).on("line", (line) => {
      this.stderrTail.push(line);
      if (this.stderrTail.length > 40) this.stderrTail.shift();
      this.opts.onLog?.(line);
    });
    proc.stdin!.on("error", () => {}); // EPIPE when the sidecar is gone; the exit handler reports it
    proc.on("exit", (code, signal) => this.onExit(code, signal));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new SidecarDiedError(`sidecar did not start within ${timeoutS} s`, this.diagnostics())),
        timeoutS * 1000,
      );
      proc.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(
          new SidecarDiedError(
            `sidecar exited during start (code ${code}, signal ${signal}); is the venv complete? Run \`make setup\`.`,
            this.diagnostics(),
          ),
        );
      });
      proc.once("error", (e) => reject(new SidecarDiedError(`cannot start ${proc.spawnfile}: ${e.message}`, "")));
      createInterface({ input: proc.stdout! }).on("line", (line) => {
        const [tag, endpoint] = line.trim().split(/\s+/);
        if (tag === SPEC.ready_line) {
          clearTimeout(timer);
          resolve(endpoint);
        }
      });
    });
  }

  /** The last stderr lines: what a SidecarDiedError shows of a crash. */
  protected override diagnostics(): string {
    return this.stderrTail.slice(-20).join("\n");
  }

  private onExit(code: number | null, signal: string | null): void {
    live.delete(this);
    this.stopHeartbeat();
    if (this.closing) return;
    this.fail(new SidecarDiedError(`sidecar (pid ${this.proc.pid}) died: exit code ${code}, signal ${signal}`, this.diagnostics()));
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** close() asked for shutdown: wait for the process to exit, killing it after `graceS`. */
  protected override async ended(graceS: number): Promise<void> {
    if (!this.alive) return;
    const exited = new Promise((r) => this.proc.once("exit", r));
    const timer = setTimeout(() => this.kill(), graceS * 1000);
    await exited;
    clearTimeout(timer);
  }

  /** Immediate SIGKILL (or the stopSignal); its exit fails what is pending with SidecarDiedError. */
  kill(): void {
    if (this.alive) this.proc.kill(this.opts.stopSignal ?? "SIGKILL");
    this.cleanup();
  }

  protected override cleanup(): void {
    if (this.closed) return;
    super.cleanup();
    live.delete(this);
    if (this.privateDir) rmSync(this.privateDir, { recursive: true, force: true });
  }
}

/** Start a sidecar, run `fn`, and always shut the sidecar down. */
export async function withSidecar<T>(opts: SidecarOptions, fn: (sc: Sidecar) => Promise<T>): Promise<T> {
  const sc = await Sidecar.start(opts);
  try {
    return await fn(sc);
  } finally {
    await sc.close();
  }
}
