// Advisers by spec: `rollout` (non-LLM reference), `local` / `local:PATH.gguf` (an embedded GGUF model, no
// network), `openai:MODEL` (any OpenAI-compatible endpoint), `replay:RUN_DIR` (an earlier run's replies), `chance`
// (the control for an LLM in candidates mode: uniformly random cards, changes and rewards), `module:PATH` (your own:
// a JS module whose default export makes an Adviser; examples/custom-adviser/). LLM replies are cached in the run
// directory, so a re-run with the same seed replays them.
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { SidecarClient } from "../../bridge/client.js";
import { UltraError } from "../../errors.js";
import { cacheDir, cachedClient, replayClient } from "../llm/cache.js";
import { llmSlots } from "../llm/limit.js";
import { chanceClient } from "../llm/chance.js";
import { localClient } from "../llm/local.js";
import { openaiClient } from "../llm/openai.js";
import type { LlmClient } from "../llm/types.js";
import type { Settings } from "../settings.js";
import { LlmAdviser } from "./llm.js";
import { RolloutAdviser } from "./rollout.js";
import type { Adviser } from "./types.js";

const SPECS = "rollout, local, local:PATH.gguf, openai:MODEL, replay:RUN_DIR, chance, module:PATH.mjs";

/** `module:PATH`: the module's default export, a function (settings) → Adviser (or a Promise of one). */
async function moduleAdviser(path: string, s: Settings): Promise<Adviser> {
  const file = resolve(path);
  if (!existsSync(file))
    throw new UltraError(
      `adviser module ${file} does not exist: give a .mjs file whose default export makes an Adviser (examples/custom-adviser/)`,
    );
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
  } catch (e) {
    throw new UltraError(
      `adviser module ${file} cannot be imported (${(e as Error).message.split("\n")[0]}): give a .mjs file whose default export makes an Adviser`,
    );
  }
  if (typeof mod.default !== "function")
    throw new UltraError(
      `adviser module ${file} has no default export function (settings) => Adviser: see examples/custom-adviser/adviser.mjs`,
    );
  const adviser = (await (mod.default as (s: Settings) => Adviser | Promise<Adviser>)(s)) as Partial<Adviser> | undefined;
  if (!adviser || typeof adviser.name !== "string" || typeof adviser.advise !== "function")
    throw new UltraError(`adviser module ${file}: its default export must return an object with a name and advise(episode, query, ctx)`);
  return adviser as Adviser;
}

async function llmClient(kind: string, arg: string, s: Settings, sc?: SidecarClient): Promise<LlmClient> {
  if (kind === "openai" && arg)
    return openaiClient(arg, { timeoutS: s.llm.timeout_s, maxRetries: s.llm.max_retries, structured: s.llm.structured });
  if (kind === "replay" && arg) return replayClient(arg);
  if (kind === "local") return localClient(arg || undefined, { sidecar: sc });
  if (kind === "chance" && !arg) return chanceClient();
  throw new UltraError(`unknown adviser "${kind}${arg ? `:${arg}` : ""}": use one of ${SPECS}`);
}

/** `runRoot`: the run directory whose identify/cache/ keeps every LLM reply. `sharedCache`: a cache dir shared
 * by several runs (a sweep's), consulted after the run's own; the run's cache still gets every reply it used.
 * `sc`: a sidecar on this machine, which `local` asks for its embedded model's file (else it starts one). */
export async function makeAdviser(spec: string, s: Settings, runRoot: string, sharedCache?: string, sc?: SidecarClient): Promise<Adviser> {
  if (spec === "rollout") return new RolloutAdviser();
  if (spec.startsWith("module:")) return moduleAdviser(spec.slice("module:".length), s);
  const colon = spec.indexOf(":"); // split at the first colon only: Ollama model names contain colons
  const [kind, arg] = colon < 0 ? [spec, ""] : [spec.slice(0, colon), spec.slice(colon + 1)];
  llmSlots.limit = s.llm.concurrency;
  const inner = await llmClient(kind, arg, s, sc);
  const client = cachedClient(sharedCache ? cachedClient(inner, sharedCache) : inner, cacheDir(runRoot));
  return new LlmAdviser(client, { maxTokens: s.llm.max_tokens, temperature: s.llm.temperature });
}
