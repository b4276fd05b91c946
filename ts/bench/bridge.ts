// `ultra bench bridge`: round-trip latency (p50/p99) and large-payload throughput, over ipc and tcp.
import { startedSidecar } from "./common.js";
import { NDArray } from "../protocol.js";
import { progressBar } from "../progress.js";

/** Measured on these machines with zeromq.js + msgpackr <-> pyzmq + msgpack (shared/sb3-reference.md). */
export const FLOOR = { round_trip_us: 200, throughput_mb_s: 1500 };

export interface BridgeResult {
  transport: "ipc" | "tcp";
  round_trips: number;
  p50_us: number;
  p99_us: number;
  payload_mb: number;
  upload_mb_s: number;
  download_mb_s: number;
  p50_vs_floor: number;
  download_vs_floor: number;
}

const quantile = (xs: number[], q: number) => xs.sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];
const micros = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1000;

export async function benchBridge(opts: { roundTrips: number; payloadMb: number; repeats: number }): Promise<BridgeResult[]> {
  const out: BridgeResult[] = [];
  for (const transport of ["ipc", "tcp"] as const) {
    await startedSidecar({ transport }, async (sc) => {
      const bar = progressBar(`bridge ${transport}`, opts.roundTrips + 2 * opts.repeats, "calls");
      const rtt: number[] = [];
      for (let i = 0; i < 200; i++) await sc.call("ping", {}); // warm-up
      for (let i = 0; i < opts.roundTrips; i++) {
        const t0 = process.hrtime.bigint();
        await sc.call("ping", {});
        rtt.push(micros(t0));
        if (i % 500 === 0) bar.update(i);
      }
      const nbytes = Math.round(opts.payloadMb * 1e6);
      const payload = new NDArray("float32", [nbytes / 4], new Float32Array(nbytes / 4).fill(1.5));
      const up: number[] = [];
      const down: number[] = [];
      for (let i = 0; i < opts.repeats; i++) {
        // upload: a chunk to Python and a small reply back; download: a chunk from Python
        let t0 = process.hrtime.bigint();
        await sc.call("echo", { payload: { n: payload.size, data: payload } }).then(() => undefined);
        up.push(micros(t0));
        t0 = process.hrtime.bigint();
        const { data } = await sc.call("blob", { nbytes });
        down.push(micros(t0));
        if (data.size !== nbytes / 4) throw new Error("blob came back with the wrong size");
        bar.update(opts.roundTrips + 2 * (i + 1));
      }
      bar.stop();
      // echo returns the payload too, so its bytes cross twice
      const upload = (2 * nbytes) / 1e6 / (quantile(up, 0.5) / 1e6);
      const download = nbytes / 1e6 / (quantile(down, 0.5) / 1e6);
      const p50 = quantile(rtt, 0.5);
      out.push({
        transport, round_trips: opts.roundTrips, p50_us: p50, p99_us: quantile(rtt, 0.99), payload_mb: opts.payloadMb,
        upload_mb_s: upload, download_mb_s: download,
        p50_vs_floor: p50 / FLOOR.round_trip_us, download_vs_floor: FLOOR.throughput_mb_s / download,
      });
    });
  }
  return out;
}
