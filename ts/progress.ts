// Progress bars with rate and ETA on stderr; in a non-TTY (CI, logs) a plain line every few seconds.
import cliProgress from "cli-progress";

export interface Progress {
  update(value: number, extra?: Record<string, string | number>): void;
  stop(): void;
}

/** `start`: work already done before this bar (a resumed or segmented job); the rate counts only new work. */
export function progressBar(phase: string, total: number, unit = "steps", start = 0): Progress {
  const bar = new cliProgress.SingleBar(
    {
      format: `${phase.padEnd(10)} |{bar}| {percentage}% | {value}/{total} ${unit} | {rate} ${unit}/s | ETA {eta_formatted} | {info}`,
      stream: process.stderr,
      noTTYOutput: true,
      notTTYSchedule: 5000,
      etaBuffer: 50,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  const t0 = Date.now();
  let last = { value: start, info: "" };
  bar.start(total, start, { rate: "-", info: "" });
  return {
    update(value, extra = {}) {
      const rate = (value - start) / Math.max((Date.now() - t0) / 1000, 1e-3);
      const info = Object.entries(extra).map(([k, v]) => `${k} ${typeof v === "number" ? fmt(v) : v}`).join(" ");
      last = { value, info };
      bar.update(value, { rate: fmt(rate), info });
    },
    stop() {
      bar.stop();
      // without a terminal the bar prints every few seconds only: end with the final state
      if (!process.stderr.isTTY) log(`${phase}: ${last.value}/${total} ${unit} in ${fmt((Date.now() - t0) / 1000)} s ${last.info}`.trimEnd());
    },
  };
}

export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a >= 1000 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : x.toFixed(2);
}

/** A readable log line on stderr. */
export const log = (msg: string) => process.stderr.write(`[ultra] ${msg}\n`);
