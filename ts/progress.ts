// Progress bars with rate and ETA on stderr; in a non-TTY (CI, logs) a plain line every few seconds.
// Inside `withLogFile` (a sweep's trial, among others running at once) both go to that trial's log file.
import { AsyncLocalStorage } from "node:async_hooks";
import { appendFileSync } from "node:fs";
import cliProgress, { type TimeFormatter } from "cli-progress";

const logFile = new AsyncLocalStorage<string>();

/** Run `fn` with every log line and progress bar of its async calls appended to `file`. */
export const withLogFile = <T>(file: string, fn: () => Promise<T>): Promise<T> => logFile.run(file, fn);

export interface Progress {
  update(value: number, extra?: Record<string, string | number>): void;
  stop(): void;
}

/** `start`: work already done before this bar (a resumed or segmented job); the rate counts only new work. */
export function progressBar(phase: string, total: number, unit = "steps", start = 0): Progress {
  if (logFile.getStore()) return fileBar(phase, total, unit, start);
  const bar = new cliProgress.SingleBar(
    {
      format: `${phase.padEnd(10)} |{bar}| {percentage}% | {value}/{total} ${unit} | {rate} ${unit}/s | ETA {eta_formatted} | {info}`,
      stream: process.stderr,
      noTTYOutput: true,
      notTTYSchedule: 5000,
      etaBuffer: 50,
      formatTime: formatEta,
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
      const info = describe(extra);
      last = { value, info };
      bar.update(value, { rate: fmt(rate), info });
    },
    stop() {
      bar.stop();
      // without a terminal the bar prints every few seconds only: end with the final state
      if (!process.stderr.isTTY)
        log(`${phase}: ${last.value}/${total} ${unit} in ${fmt((Date.now() - t0) / 1000)} s ${last.info}`.trimEnd());
    },
  };
}

/** cli-progress's time format, except for an ETA it cannot estimate yet (no progress since the bar started, e.g. a
 * sweep before its first trial ends): cli-progress passes "INF" or "NULL" (or its initial "0", a string) there,
 * which its own format turns into "NFs" or "LLs"; this shows "–". */
export const formatEta: TimeFormatter = (t, options, roundToMultipleOf) =>
  typeof t === "number" && Number.isFinite(t) ? cliProgress.Format.TimeFormat(t, options, roundToMultipleOf) : "–";

/** A bar's extra fields as "key value" pairs. */
const describe = (extra: Record<string, string | number>) =>
  Object.entries(extra)
    .map(([k, v]) => `${k} ${typeof v === "number" ? fmt(v) : v}`)
    .join(" ");

export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a >= 1000 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : x.toFixed(2);
}

/** In a log file, a line every 30 s and one at the end (with the rate and ETA a bar would show). */
function fileBar(phase: string, total: number, unit: string, start: number): Progress {
  const t0 = Date.now();
  let [value, info, shown] = [start, "", 0];
  const line = () => {
    const s = Math.max((Date.now() - t0) / 1000, 1e-3);
    const rate = (value - start) / s;
    const eta = rate > 0 ? `, ETA ${fmt((total - value) / rate)} s` : "";
    log(`${phase}: ${value}/${total} ${unit} in ${fmt(s)} s (${fmt(rate)} ${unit}/s${eta}) ${info}`.trimEnd());
  };
  return {
    update(v, extra = {}) {
      value = v;
      info = describe(extra);
      if (Date.now() - shown > 30_000) {
        shown = Date.now();
        line();
      }
    },
    stop: line,
  };
}

/** A readable log line on stderr (or in the current log file). */
export function log(msg: string): void {
  const file = logFile.getStore();
  if (file) appendFileSync(file, `${new Date().toISOString()} ${msg}\n`);
  else process.stderr.write(`[ultra] ${msg}\n`);
}
