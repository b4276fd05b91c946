// The reply cache and exact replay: every request is keyed by a hash of its content, and its reply is kept
// verbatim in RUN/identify/cache/<hash>.json, so a resumed run does not pay twice and a finished run can be
// replayed without the LLM.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { UltraError } from "../../errors.js";
import type { LlmClient, LlmReply, LlmRequest } from "./types.js";

export interface CacheEntry {
  key: string;
  /** the client's name, e.g. "openai:gpt-4o-mini" */
  model: string;
  /** the client's context window, which the prompt was summarised to fit (replay declares the same) */
  context_tokens: number;
  request: LlmRequest;
  reply: LlmReply;
}

export interface CachedClient extends LlmClient {
  readonly hits: number;
  readonly misses: number;
}

export const cacheDir = (runDir: string) => join(runDir, "identify", "cache");

/** JSON with object keys sorted at every level, so equal content always hashes the same. */
function canonical(x: unknown): string {
  if (Array.isArray(x)) return `[${x.map(canonical).join(",")}]`;
  if (x !== null && typeof x === "object")
    return `{${Object.keys(x)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((x as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  return JSON.stringify(x) ?? "null";
}

export function requestKey(model: string, req: LlmRequest): string {
  const { prompt, schema, maxTokens, temperature, seed } = req;
  return createHash("sha256").update(canonical({ model, prompt, schema, maxTokens, temperature, seed })).digest("hex");
}

function readEntry(file: string): CacheEntry | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, "utf8")) as CacheEntry;
  } catch (e) {
    throw new UltraError(`${file} is not a readable cache entry (${(e as Error).message}); delete it to ask the LLM again`);
  }
}

// Requests being asked right now, by cache file: the same request from another run (a sweep's trials share a
// cache) waits for that reply instead of paying for it again.
const inFlight = new Map<string, Promise<LlmReply>>();

/** Serve repeated requests from `dir`; ask `inner` (and store its reply) otherwise. */
export function cachedClient(inner: LlmClient, dir: string): CachedClient {
  let hits = 0;
  let misses = 0;
  return {
    name: inner.name,
    contextTokens: inner.contextTokens,
    get hits() {
      return hits;
    },
    get misses() {
      return misses;
    },
    async complete(req) {
      const key = requestKey(inner.name, req);
      const file = join(dir, `${key}.json`);
      const entry = readEntry(file);
      const asked = inFlight.get(file);
      if (entry || asked) {
        hits++;
        // Nothing was spent this time; the file keeps what the original call used.
        return { ...(entry?.reply ?? (await asked!)), usage: { promptTokens: 0, completionTokens: 0, costUsd: 0 }, seconds: 0 };
      }
      misses++;
      const ask = inner.complete(req).then((reply) => {
        const stored: CacheEntry = { key, model: inner.name, context_tokens: inner.contextTokens, request: req, reply };
        mkdirSync(dir, { recursive: true });
        const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`; // atomic even with calls in flight
        writeFileSync(tmp, JSON.stringify(stored, null, 2) + "\n");
        renameSync(tmp, file);
        return reply;
      });
      inFlight.set(file, ask);
      try {
        return await ask;
      } finally {
        inFlight.delete(file);
      }
    },
    close: inner.close?.bind(inner),
  };
}

/** Serve only what RUN_DIR/identify/cache holds: replays a run exactly, never calls an LLM. */
export function replayClient(runDir: string): LlmClient {
  const dir = cacheDir(runDir);
  if (!existsSync(dir)) throw new UltraError(`${dir} does not exist: ${runDir} has no LLM replies to replay`);
  const entries = readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .map((f) => readEntry(join(dir, f))!);
  const models = [...new Set(entries.map((e) => e.model))];
  const byKey = new Map(entries.map((e) => [e.key, e]));
  return {
    // the original model's name: the replayed run records the same adviser, and caches under the same keys
    name: models.length === 1 ? models[0] : `replay:${runDir}`,
    contextTokens: entries[0]?.context_tokens ?? 8192,
    async complete(req) {
      for (const model of models) {
        const entry = byKey.get(requestKey(model, req));
        if (entry) return entry.reply;
      }
      const firstLine = req.prompt.user.split("\n").find((l) => l.trim()) ?? "";
      const model = models.join(" or ") || "(none: the cache is empty)";
      throw new UltraError(
        `${dir} has no reply for this request (key ${requestKey(models[0] ?? "", req)}, model ${model}, seed ${req.seed}, ` +
          `prompt starting "${firstLine.slice(0, 120)}"): the run cannot be replayed without the LLM`,
      );
    },
  };
}
