// One run directory per `ultra train`: every phase reads and writes here, so any phase can be re-run or resumed.
//   run.json  base/  trajectories/  identify/  critical_states.json  refined/  eval.json  report.md  curves.png
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { Packr } from "msgpackr";
import { z } from "zod";
import { UltraError } from "../errors.js";
import { pack, unpack } from "../protocol.js";

export const PHASES = ["base", "identify", "improve", "evaluate", "report"] as const;
export type Phase = (typeof PHASES)[number];

export interface RunRecord {
  env: string;
  env_id: string;
  /** the env config file the run's env came from (`--env PATH.yaml`), absolute; absent for configs/envs */
  env_config?: string;
  seed: number;
  profile: string;
  settings: Record<string, unknown>;
  created: string;
  git_commit: string | null;
  versions: Record<string, unknown>;
  phases: Partial<Record<Phase, { finished: string; seconds: number; [k: string]: unknown }>>;
  usage?: Record<string, unknown>;
}

// Files hold a message's frames (body + out-of-band arrays) as one msgpack array of bins.
const container = new Packr({ useRecords: false });

export class RunDir {
  readonly root: string;
  constructor(root: string) {
    this.root = resolve(root);
  }

  path(...parts: string[]): string {
    return join(this.root, ...parts);
  }

  exists(...parts: string[]): boolean {
    return existsSync(this.path(...parts));
  }

  /** Write atomically (temp file + rename), so an interrupted run never leaves half a file. */
  write(rel: string, data: string | Uint8Array): string {
    const file = this.path(rel);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(`${file}.tmp`, data);
    renameSync(`${file}.tmp`, file);
    return file;
  }

  writeJson(rel: string, value: unknown): string {
    return this.write(rel, JSON.stringify(value, null, 2) + "\n");
  }

  readJson<T>(rel: string): T {
    const file = this.path(rel);
    if (!existsSync(file)) throw new UltraError(`${file} is missing; run the phase that writes it first`);
    try {
      return JSON.parse(readFileSync(file, "utf8")) as T;
    } catch (e) {
      throw new UltraError(`${file} is corrupt (${(e as Error).message}); delete it and re-run its phase`);
    }
  }

  /** Read a JSON file and check it against `schema`; a mismatch names the file and the field. */
  readChecked<T>(rel: string, schema: z.ZodType<T>): T {
    const parsed = schema.safeParse(this.readJson(rel));
    if (!parsed.success)
      throw new UltraError(`${this.path(rel)} is corrupt: ${z.prettifyError(parsed.error)}; delete it and re-run its phase`);
    return parsed.data;
  }

  writeMessage(rel: string, value: unknown): string {
    return this.write(rel, container.pack(pack(value).map((f) => Buffer.from(f.buffer, f.byteOffset, f.byteLength))));
  }

  readMessage<T>(rel: string): T {
    const file = this.path(rel);
    if (!existsSync(file)) throw new UltraError(`${file} is missing; run the phase that writes it first`);
    try {
      return unpack(container.unpack(readFileSync(file)) as Uint8Array[]) as T;
    } catch (e) {
      throw new UltraError(`${file} is corrupt (${(e as Error).message}); delete it and re-run its phase`);
    }
  }

  get record(): RunRecord {
    return this.readJson<RunRecord>("run.json");
  }

  set record(r: RunRecord) {
    this.writeJson("run.json", r);
  }

  done(phase: Phase): boolean {
    return this.exists("run.json") && Boolean(this.record.phases[phase]);
  }

  markDone(phase: Phase, seconds: number, extra: Record<string, unknown> = {}): void {
    const r = this.record;
    r.phases[phase] = { finished: new Date().toISOString(), seconds, ...extra };
    this.record = r;
  }

  /** Forget a phase and every later one (they depend on it). */
  invalidateFrom(phase: Phase): void {
    const r = this.record;
    for (const p of PHASES.slice(PHASES.indexOf(phase))) delete r.phases[p];
    this.record = r;
  }
}
