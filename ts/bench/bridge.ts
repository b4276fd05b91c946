// `ultra bench bridge`: round-trip latency (p50/p99) and large-payload throughput, over ipc and tcp, for the
// sidecar and, side by side in the same run, for the plainest zeromq.js + msgpackr <-> pyzmq + msgpack pair.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { pack, unpack } from "msgpackr";
import { Dealer } from "zeromq";
import { ROOT, pythonPath } from "../paths.js";
import { fmt, log, progressBar } from "../progress.js";
import { defineCommand, printJson } from "../commands/common.js";
import { NDArray } from "../protocol.js";
import type { Sidecar } from "../bridge/sidecar.js";
import { startedSidecar, writeResult } from "./common.js";

/** The floor measured on these machines earlier (shared/sb3-reference.md); each run measures its own too. */
export const REFERENCE_FLOOR = { round_trip_us: 200, throughput_mb_s: 1500 };

export interface BridgeOptions {
  roundTrips: number;
  payloadMb: number;
  repeats: number;
}

/** Three calls to time: a small round trip, a payload up and back, a payload down. */
interface Calls {
  ping(): Promise<unknown>;
  upload(): Promise<unknown>;
  download(): Promise<unknown>;
}

interface Timing {
  p50_us: number;
  p99_us: number;
  /** payload MB/s, sent up and back (2 × payload per call) */
  upload_mb_s: number;
  /** payload MB/s, Python to TS */
  download_mb_s: number;
}

export interface BridgeResult {
  transport: "ipc" | "tcp";
  payload_mb: number;
  sidecar: Timing;
  floor: Timing;
  /** sidecar / floor: > 1 means slower than the floor (goal ≤ 1.2) */
  ratio: { round_trip: number; upload: number; download: number };
}

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

async function timeCalls(call: () => Promise<unknown>, n: number, warmup: number): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await call();
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await call();
    times.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  return times;
}

/** Time both peers in alternating blocks, so drifts in machine load hit them alike. */
async function measurePair(peers: [Calls, Calls], o: BridgeOptions): Promise<[Timing, Timing]> {
  const blocks = 10;
  const rtt: number[][] = [[], []];
  const up: number[][] = [[], []];
  const down: number[][] = [[], []];
  for (const p of peers) await timeCalls(p.ping, 0, 200);
  for (let b = 0; b < blocks; b++)
    for (const [i, p] of peers.entries()) {
      rtt[i].push(...(await timeCalls(p.ping, Math.ceil(o.roundTrips / blocks), 0)));
      up[i].push(...(await timeCalls(p.upload, Math.ceil(o.repeats / blocks), 1)));
      down[i].push(...(await timeCalls(p.download, Math.ceil(o.repeats / blocks), 1)));
    }
  const timing = (i: number): Timing => ({
    p50_us: quantile(rtt[i], 0.5),
    p99_us: quantile(rtt[i], 0.99),
    upload_mb_s: (2 * o.payloadMb) / (quantile(up[i], 0.5) / 1e6),
    download_mb_s: o.payloadMb / (quantile(down[i], 0.5) / 1e6),
  });
  return [timing(0), timing(1)];
}

function sidecarCalls(sc: Sidecar, o: BridgeOptions): Calls {
  const nbytes = Math.round(o.payloadMb * 1e6);
  const payload = new NDArray("float32", [nbytes / 4], new Float32Array(nbytes / 4).fill(1.5));
  return {
    ping: () => sc.call("ping", {}),
    upload: () => sc.call("echo", { payload }),
    download: async () => {
      const { data } = await sc.call("blob", { nbytes });
      if (data.size !== nbytes / 4) throw new Error("blob came back with the wrong size");
    },
  };
}

/** py/ultra_sidecar/floor.py: a bare ROUTER that echoes msgpack and serves a msgpack bin blob. */
async function withFloor<T>(transport: "ipc" | "tcp", o: BridgeOptions, fn: (calls: Calls) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "ultra-floor-"));
  const endpoint = transport === "ipc" ? `ipc://${join(dir, "floor.sock")}` : "tcp://127.0.0.1:0";
  const proc = spawn(pythonPath(), [join(ROOT, "py", "ultra_sidecar", "floor.py"), endpoint], { stdio: ["pipe", "pipe", "inherit"] });
  const dealer = new Dealer({ linger: 0 });
  try {
    const bound = await new Promise<string>((resolve, reject) => {
      proc.once("exit", (code) => reject(new Error(`floor server exited with ${code}`)));
      createInterface({ input: proc.stdout! }).once("line", (l) => resolve(l.split(" ")[1]));
    });
    dealer.connect(bound);
    const call = async (msg: object) => {
      await dealer.send(pack(msg));
      const [reply] = await dealer.receive();
      return unpack(reply);
    };
    const nbytes = Math.round(o.payloadMb * 1e6);
    const bytes = Buffer.alloc(nbytes, 7);
    return await fn({ ping: () => call({ op: "ping" }), upload: () => call({ op: "echo", payload: bytes }), download: () => call({ op: "blob", nbytes }) });
  } finally {
    dealer.close();
    proc.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchBridge(o: BridgeOptions): Promise<BridgeResult[]> {
  const out: BridgeResult[] = [];
  for (const transport of ["ipc", "tcp"] as const) {
    const bar = progressBar(`bridge ${transport}`, 1, "runs");
    const [floor, sidecar] = await withFloor(transport, o, (floorCalls) =>
      startedSidecar({ transport }, (sc) => measurePair([floorCalls, sidecarCalls(sc, o)], o)),
    );
    bar.update(1);
    bar.stop();
    out.push({
      transport,
      payload_mb: o.payloadMb,
      sidecar,
      floor,
      ratio: {
        round_trip: sidecar.p50_us / floor.p50_us,
        upload: floor.upload_mb_s / sidecar.upload_mb_s,
        download: floor.download_mb_s / sidecar.download_mb_s,
      },
    });
  }
  return out;
}

export const bridgeBench = defineCommand(
  "bridge",
  "round-trip p50/p99 and MB/s for a large chunk, over ipc and tcp, beside a bare pyzmq/msgpack floor",
  (b) =>
    b
      .option("json", { type: "string", describe: "write the result to this file too" })
      .option("round-trips", { type: "number", default: 5000 })
      .option("payload-mb", { type: "number", default: 10 })
      .option("repeats", { type: "number", default: 30 }),
  async (a) => {
    const results = await benchBridge({ roundTrips: a.roundTrips, payloadMb: a.payloadMb, repeats: a.repeats });
    for (const r of results)
      log(
        `${r.transport}: round trip p50 ${fmt(r.sidecar.p50_us)} µs (floor ${fmt(r.floor.p50_us)}, ${fmt(r.ratio.round_trip)}×), p99 ${fmt(r.sidecar.p99_us)} µs; ` +
          `${r.payload_mb} MB down ${fmt(r.sidecar.download_mb_s)} MB/s (floor ${fmt(r.floor.download_mb_s)}, ${fmt(r.ratio.download)}×), ` +
          `up+back ${fmt(r.sidecar.upload_mb_s)} MB/s (floor ${fmt(r.floor.upload_mb_s)}, ${fmt(r.ratio.upload)}×)`,
      );
    printJson(writeResult("bridge", { results }, a));
  },
);
