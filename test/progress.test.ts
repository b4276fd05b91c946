// The progress bar's ETA before anything has progressed (a sweep until its first trial ends).
import cliProgress from "cli-progress";
import { afterEach, describe, expect, it, vi } from "vitest";
import { formatEta, progressBar } from "../ts/progress.js";

const options = { autopaddingChar: "" } as cliProgress.Options; // cli-progress's default without autopadding

describe("progress bar ETA", () => {
  afterEach(() => vi.restoreAllMocks());

  it('shows "–" for an ETA cli-progress cannot estimate, and its own format otherwise', () => {
    for (const t of ["INF", "NULL", "0", Infinity, NaN]) expect(formatEta(t as number, options, 5)).toBe("–");
    expect(cliProgress.Format.TimeFormat("INF" as unknown as number, options, 5)).toBe("NFs"); // what it showed before
    expect(formatEta(7, options, 5)).toBe("7s");
    expect(formatEta(75, options, 5)).toBe(cliProgress.Format.TimeFormat(75, options, 5));
    expect(formatEta(7200, options, 5)).toBe("2h0m");
  });

  it('a bar whose value has not moved shows "ETA –", never "NFs"', async () => {
    const lines: string[] = [];
    vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    const isTTY = process.stderr.isTTY;
    process.stderr.isTTY = false; // the plain-line mode: every render is a line
    try {
      const bar = progressBar("sweep", 4, "trials");
      bar.update(0, { running: "2" }); // the sweep's 2-second refresh while its first trials run
      await new Promise((r) => setTimeout(r, 20));
      bar.update(0, { running: "2" });
      bar.stop();
    } finally {
      process.stderr.isTTY = isTTY;
    }
    const out = lines.join("");
    expect(out).toMatch(/0\/4 trials \| .* \| ETA – \| running 2/);
    expect(out).not.toMatch(/NFs|LLs/);
  });
});
