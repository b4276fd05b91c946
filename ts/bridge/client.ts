// The protocol client every sidecar speaks through: one DEALER socket, requests matched to replies by id, streamed
// events, per-request timeouts, a heartbeat, and replies decoded into results or typed errors (./errors.ts).
// It owns no process: ./sidecar.ts (a child process of ours) and ./remote.ts (a Ray actor over CURVE) add where the
// sidecar lives and how it is stopped. Code that only calls ops takes a `SidecarClient`, so either kind will do.
import { AsyncResource } from "node:async_hooks";
import { Dealer, type SocketOptions } from "zeromq";
import { VERSION, pack, unpack, type Reply } from "../protocol.js";
import { ProtocolVersionError, SidecarDiedError, SidecarError, SidecarTimeoutError, UltraError } from "./errors.js";
import type { HelloResult, OpArgs, OpName, OpResult } from "./ops.js";

/** How the client talks, whichever kind of sidecar is on the other end. */
export interface ClientOptions {
  /** Default per-request timeout; for streaming ops it is the longest gap between two messages. */
  requestTimeoutS?: number;
  /** Ping when idle this often; 0 = off. */
  heartbeatS?: number;
  /** Protocol version to announce (tests use a wrong one on purpose). */
  protocolVersion?: number;
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

export abstract class SidecarClient {
  protected readonly dealer: Dealer;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private sendChain: Promise<void> = Promise.resolve();
  private heartbeat?: NodeJS.Timeout;
  /** Set once the sidecar is gone: every later call rejects with it. */
  protected deadError?: Error;
  /** close() has asked for shutdown: the sidecar ending now is expected, not a failure. */
  protected closing = false;
  /** The socket is closed (cleanup ran). */
  protected closed = false;
  /** Errors the sidecar sent with no request id (frames it could not read). */
  readonly unroutedErrors: Error[] = [];
  /** The sidecar's hello: protocol, versions, device, pid. */
  info!: HelloResult;
  endpoint = "";

  /** `socket`: options on top of ours (a remote sidecar adds its CURVE keys). */
  protected constructor(
    private readonly clientOpts: ClientOptions,
    socket: SocketOptions<Dealer> = {},
  ) {
    // no queue limits and no linger: a dead peer must fail requests, not hold them
    this.dealer = new Dealer({ linger: 0, receiveHighWaterMark: 0, sendHighWaterMark: 0, ...socket });
  }

  /** True while the sidecar can still answer. */
  abstract get alive(): boolean;

  /** Stop at once; pending requests fail with SidecarDiedError. */
  abstract kill(): void;

  /** What to attach to a SidecarDiedError (a spawned sidecar's last stderr lines). */
  protected diagnostics(): string {
    return "";
  }

  /** Connect to the endpoint, say hello, start the heartbeat; on any failure stop the sidecar and throw. */
  protected async open(endpoint: () => Promise<string> | string): Promise<this> {
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

  private async handshake(): Promise<HelloResult> {
    const version = this.clientOpts.protocolVersion ?? VERSION;
    try {
      return await this.callRaw("hello", { client_version: version }, { timeoutS: 30 }, version);
    } catch (e) {
      if (e instanceof SidecarError && e.code === "protocol_version")
        throw new ProtocolVersionError(`protocol version mismatch: this client speaks v${version}; ${e.message}`);
      throw e;
    }
  }

  private startHeartbeat(): void {
    const every = this.clientOpts.heartbeatS ?? 5;
    if (!every) return;
    this.heartbeat = setInterval(() => {
      if (this.pending.size === 0 && !this.deadError) this.call("ping", {}, { timeoutS: Math.max(every * 2, 10) }).catch(() => {});
    }, every * 1000);
    this.heartbeat.unref();
  }

  protected stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
  }

  /** The sidecar is gone: reject everything pending with `err`, and every later call too. */
  protected fail(err: Error): void {
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
    const timeoutS = opts.timeoutS ?? this.clientOpts.requestTimeoutS ?? 120;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        const err = new SidecarTimeoutError(`${op}: no reply from the sidecar for ${timeoutS} s`);
        reject(err);
        if (op === "ping") {
          // an unanswered heartbeat means the sidecar hangs: stop it so nothing waits forever
          this.fail(new SidecarDiedError(`sidecar stopped answering heartbeats`, this.diagnostics()));
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

  /** Ask the sidecar to stop (the `shutdown` op), wait for it to end, then release the socket. */
  async close(graceS = 5): Promise<void> {
    if (this.closing) return;
    if (this.alive && !this.deadError) await this.call("shutdown", {}, { timeoutS: graceS }).catch(() => {});
    this.closing = true;
    await this.ended(graceS);
    this.cleanup();
  }

  /** After `shutdown` was asked: wait until the sidecar is gone. Nothing to wait for unless we own its process. */
  protected async ended(_graceS: number): Promise<void> {}

  /** Release the socket and the heartbeat, once; subclasses add what else they hold. */
  protected cleanup(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopHeartbeat();
    this.dealer.close();
  }
}
