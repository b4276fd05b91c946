// The Python sidecar as a child process plus a typed DEALER client. The sidecar lives and dies with us:
// it watches its stdin (our pipe), we kill it on exit, and every pending request fails fast if it dies.
// A remote sidecar (a Ray actor in a sweep) is reached over TCP with CURVE: its death shows as a disconnect.
import { AsyncResource } from "node:async_hooks";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Dealer } from "zeromq";
import { ROOT, pythonPath } from "../paths.js";
import { SPEC, VERSION, pack, unpack, type Reply } from "../protocol.js";
import { ProtocolVersionError, SidecarDiedError, SidecarError, SidecarTimeoutError, UltraError } from "./errors.js";
import type { HelloResult, OpArgs, OpName, OpResult } from "./ops.js";

export interface SidecarOptions {
  /** "ipc" (default): a socket in a private 0700 temp dir. "tcp": 127.0.0.1 on a free port. */
  transport?: "ipc" | "tcp";
  /** Bind tcp on another address; only when the user asks for it. */
  tcpHost?: string;
  device?: "auto" | "cpu" | "cuda";
  torchThreads?: number;
  python?: string;
  /** Seconds to wait for the sidecar to start (torch import takes a few). */
  startTimeoutS?: number;
  /** Default per-request timeout; for streaming ops it is the longest gap between two messages. */
  requestTimeoutS?: number;
  /** Ping when idle this often; 0 = off. */
  heartbeatS?: number;
  /** Protocol version to announce (tests use a wrong one on purpose). */
  protocolVersion?: number;
  /** Sidecar stderr lines (logs) as they come. */
  onLog?: (line: string) => void;
  /** How kill() stops the process: SIGKILL, or SIGTERM for a sidecar that must clean up (a Ray host stops Ray). */
  stopSignal?: "SIGKILL" | "SIGTERM";
}

/** What a client needs to reach a CURVE server: its public key (pinned) and our own key pair (z85). */
export interface ClientCurve {
  serverPublic: string;
  publicKey: string;
  secretKey: string;
}

export interface CallOptions {
  timeoutS?: number;
  onEvent?: (event: string, data: any) => void;
}

interface Pending {
  op: string;
  resolve: (r: any) => void;
  reject: (e: Error) => void;
  onEvent?: (event: string, data: any) => void;
  timer: NodeJS.Timeout;
  timeoutS: number;
}

const live = new Set<Sidecar>();
process.on("exit", () => live.forEach((s) => s.kill()));

export class Sidecar {
  private readonly dealer: Dealer;
  private readonly pending = new Map<number, Pending>();
  private readonly stderrTail: string[] = [];
  private nextId = 1;
  private sendChain: Promise<void> = Promise.resolve();
  private heartbeat?: NodeJS.Timeout;
  private deadError?: Error;
  private closing = false;
  private closed = false;
  /** Errors the sidecar sent with no request id (frames it could not read). */
  readonly unroutedErrors: Error[] = [];
  info!: HelloResult;
  endpoint = "";

  private constructor(
    /** the child process; undefined for a remote sidecar */
    readonly proc: ChildProcess | undefined,
    private readonly privateDir: string | undefined,
    private readonly opts: SidecarOptions,
    curve?: ClientCurve,
  ) {
    const base = { linger: 0, receiveHighWaterMark: 0, sendHighWaterMark: 0 };
    // remote: ZMTP heartbeats find a peer that vanished without closing its connection (a lost node)
    this.dealer = new Dealer(
      curve
        ? {
            ...base,
            curveServerKey: curve.serverPublic,
            curvePublicKey: curve.publicKey,
            curveSecretKey: curve.secretKey,
            heartbeatInterval: 2000,
            heartbeatTimeout: 10000,
          }
        : base,
    );
  }

  /** Reach a sidecar that runs elsewhere (a Ray actor) at a tcp endpoint, encrypted and authenticated by CURVE.
   * It is gone when its connection drops: pending requests then fail with SidecarDiedError. */
  static async connect(endpoint: string, curve: ClientCurve, opts: SidecarOptions = {}): Promise<Sidecar> {
    const sc = new Sidecar(undefined, undefined, opts, curve);
    let connected = false;
    sc.dealer.events.on("handshake", () => (connected = true));
    const lost = (why: string) => () => {
      if (sc.closing) return;
      sc.fail(
        new SidecarDiedError(
          connected
            ? `remote sidecar at ${endpoint} ${why}`
            : `cannot reach the sidecar at ${endpoint}: ${why} (is the key pinned for it the right one?)`,
          "",
        ),
      );
      sc.cleanup();
    };
    sc.dealer.events.on("disconnect", lost("disconnected"));
    sc.dealer.events.on("handshake:error:auth", lost("refused our CURVE client key"));
    sc.dealer.events.on("handshake:error:protocol", lost("failed the CURVE handshake"));
    live.add(sc);
    return sc.open(() => endpoint);
  }

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

  /** Connect to the endpoint, say hello, start the heartbeat; on any failure stop the sidecar and throw. */
  private async open(endpoint: () => Promise<string> | string): Promise<Sidecar> {
    try {
      this.endpoint = await endpoint();
      this.dealer.connect(this.endpoint);
      void this.receiveLoop();
      this.info = await this.handshake();
    } catch (e) {
      this.kill();
      throw e;
    }
    this.startHeartbeat();
    return this;
  }

  private waitReady(timeoutS: number): Promise<string> {
    const proc = this.proc!;
    createInterface({ input: proc.stderr! }).on("line", (line) => {
      this.stderrTail.push(line);
      if (this.stderrTail.length > 40) this.stderrTail.shift();
      this.opts.onLog?.(line);
    });
    proc.stdin!.on("error", () => {}); // EPIPE when the sidecar is gone; the exit handler reports it
    proc.on("exit", (code, signal) => this.onExit(code, signal));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new SidecarDiedError(`sidecar did not start within ${timeoutS} s`, this.tail())),
        timeoutS * 1000,
      );
      proc.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(
          new SidecarDiedError(
            `sidecar exited during start (code ${code}, signal ${signal}); is the venv complete? Run \`make setup\`.`,
            this.tail(),
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

  private async handshake(): Promise<HelloResult> {
    const version = this.opts.protocolVersion ?? VERSION;
    try {
      return await this.callRaw("hello", { client_version: version }, { timeoutS: 30 }, version);
    } catch (e) {
      if (e instanceof SidecarError && e.code === "protocol_version")
        throw new ProtocolVersionError(`protocol version mismatch: this client speaks v${version}; ${e.message}`);
      throw e;
    }
  }

  private startHeartbeat(): void {
    const every = this.opts.heartbeatS ?? 5;
    if (!every) return;
    this.heartbeat = setInterval(() => {
      if (this.pending.size === 0 && !this.deadError) this.call("ping", {}, { timeoutS: Math.max(every * 2, 10) }).catch(() => {});
    }, every * 1000);
    this.heartbeat.unref();
  }

  private tail(): string {
    return this.stderrTail.slice(-20).join("\n");
  }

  private onExit(code: number | null, signal: string | null): void {
    live.delete(this);
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.closing) return;
    this.fail(new SidecarDiedError(`sidecar (pid ${this.proc!.pid}) died: exit code ${code}, signal ${signal}`, this.tail()));
  }

  private fail(err: Error): void {
    this.deadError ??= err;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(err);
    }
  }

  private async receiveLoop(): Promise<void> {
    try {
      for await (const frames of this.dealer) this.route(frames);
    } catch {
      // the socket closed: close() or kill() already settled everything
    }
  }

  private route(frames: Buffer[]): void {
    let msg: Reply;
    try {
      msg = unpack(frames);
    } catch (e) {
      this.unroutedErrors.push(new UltraError(`unreadable frame from the sidecar: ${(e as Error).message}`));
      return;
    }
    const p = msg.id == null ? undefined : this.pending.get(msg.id);
    if (!p) {
      if (msg.error) this.unroutedErrors.push(new SidecarError("?", msg.error));
      return;
    }
    if (msg.event !== undefined) {
      p.timer.refresh();
      p.onEvent?.(msg.event, msg.data);
      return;
    }
    clearTimeout(p.timer);
    this.pending.delete(msg.id!);
    if (msg.ok) p.resolve(msg.result);
    else p.reject(new SidecarError(p.op, msg.error!));
  }

  /** Send one request; resolves with its result, calling onEvent for each streamed event before. */
  call<K extends OpName>(op: K, args: OpArgs<K>, opts: CallOptions = {}): Promise<OpResult<K>> {
    return this.callRaw(op, args, opts, VERSION);
  }

  private callRaw(op: string, args: object, opts: CallOptions, version: number): Promise<any> {
    if (this.deadError) return Promise.reject(this.deadError);
    const id = this.nextId++;
    const timeoutS = opts.timeoutS ?? this.opts.requestTimeoutS ?? 120;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        const err = new SidecarTimeoutError(`${op}: no reply from the sidecar for ${timeoutS} s`);
        reject(err);
        if (op === "ping") {
          // an unanswered heartbeat means the sidecar hangs: stop it so nothing waits forever
          this.fail(new SidecarDiedError(`sidecar stopped answering heartbeats`, this.tail()));
          this.kill();
        }
      }, timeoutS * 1000);
      // events arrive from the receive loop: run their handler in the caller's async context (its log file)
      const onEvent = opts.onEvent && AsyncResource.bind(opts.onEvent);
      this.pending.set(id, { op, resolve, reject, onEvent, timer, timeoutS });
      const frames = pack({ v: version, id, op, args });
      this.sendChain = this.sendChain
        .then(() => this.dealer.send(frames))
        .catch((e) => {
          const p = this.pending.get(id);
          if (!p) return;
          clearTimeout(p.timer);
          this.pending.delete(id);
          p.reject(new UltraError(`${op}: cannot send to the sidecar: ${(e as Error).message}`));
        });
    });
  }

  /** Send raw frames (tests and fuzzing only). */
  sendRaw(...frames: Uint8Array[]): Promise<void> {
    return (this.sendChain = this.sendChain.then(() => this.dealer.send(frames)));
  }

  get alive(): boolean {
    if (!this.proc) return !this.deadError && !this.closed;
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Ask the sidecar to stop; kill it if it does not within `graceS`. */
  async close(graceS = 5): Promise<void> {
    if (this.closing) return;
    if (this.alive && !this.deadError) await this.call("shutdown", {}, { timeoutS: graceS }).catch(() => {});
    this.closing = true;
    const exited = this.proc && this.alive ? new Promise((r) => this.proc!.once("exit", r)) : Promise.resolve();
    const timer = setTimeout(() => this.kill(), graceS * 1000);
    await exited;
    clearTimeout(timer);
    this.cleanup();
  }

  /** Immediate SIGKILL (or the stopSignal; a remote sidecar: drop the connection); pending requests fail with SidecarDiedError. */
  kill(): void {
    if (this.proc) {
      if (this.alive) this.proc.kill(this.opts.stopSignal ?? "SIGKILL"); // its exit fails what is pending
    } else this.fail(new SidecarDiedError(`the connection to the sidecar at ${this.endpoint} was closed`, ""));
    this.cleanup();
  }

  private cleanup(): void {
    if (this.closed) return;
    this.closed = true;
    live.delete(this);
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.dealer.close();
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
