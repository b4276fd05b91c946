// The adviser's prompt for one episode, rendered from prompts/: shared parts (role, reply format, reasoning
// steps, worked cases) around the env's own description (goal, reward terms, termination, actions).
// Templates are Markdown with {{name}} placeholders; an unknown placeholder or a missing variable is an
// error that names it, never a silent "".
import { readFileSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { UltraError } from "../errors.js";
import type { SpaceInfo } from "../bridge/ops.js";
import { resolveEnv } from "../config.js";
import { interpreterFor } from "./envs/index.js";
import { ROOT } from "../paths.js";

export const PROMPTS_DIR = join(ROOT, "prompts");

export interface PromptVars {
  /** the episode as text (summarizeEpisode) */
  episode: string;
  maxCriticalStates: number;
  /** how to write an action, e.g. actionSpaceText(space) */
  actionSpace: string;
}

export interface Prompt {
  system: string;
  user: string;
}

const REQUIRED = ["episode", "maxCriticalStates", "actionSpace"] as const;

/** The env's description template (configs/envs `prompt:`, in prompts/; an absolute path for an env config file of
 * your own); an env no config knows gets generic.md. */
export function envTemplate(env: string): string {
  try {
    return resolveEnv(env).prompt;
  } catch {
    return "generic.md";
  }
}

/** Replace each {{name}} with vars[name], in one pass (inserted text is never scanned for placeholders). */
export function renderTemplate(text: string, vars: Record<string, string>, source: string): string {
  let found = 0;
  const out = text.replace(/\{\{([^{}]*)\}\}/g, (_, raw: string) => {
    found++;
    const name = raw.trim();
    if (!Object.hasOwn(vars, name))
      throw new UltraError(`${source}: unknown placeholder {{${name}}} (known: ${Object.keys(vars).sort().join(", ")})`);
    return vars[name];
  });
  if (text.split("{{").length - 1 !== found) throw new UltraError(`${source}: a "{{" that does not open a {{name}} placeholder`);
  return out;
}

/** A renderer of prompts/ templates with the variables every template may use (env name, action semantics,
 * maxCriticalStates) and the mode's own. */
function templates(configName: string, maxCriticalStates: number, vars: Record<string, string>, dir = PROMPTS_DIR) {
  if (!Number.isInteger(maxCriticalStates) || maxCriticalStates < 1)
    throw new UltraError(`prompt variable "maxCriticalStates" must be a positive integer, got ${maxCriticalStates}`);
  const interp = interpreterFor(configName);
  const base = { envName: interp.name, actionSemantics: interp.actionSemantics, maxCriticalStates: String(maxCriticalStates), ...vars };
  return (file: string, extra: Record<string, string> = {}) =>
    renderTemplate(readFileSync(resolve(dir, file), "utf8").trimEnd(), { ...base, ...extra }, isAbsolute(file) ? file : `prompts/${file}`);
}

export function renderPrompt(configName: string, vars: PromptVars, opts: { dir?: string } = {}): Prompt {
  for (const k of REQUIRED) if (vars?.[k] === undefined || vars[k] === null) throw new UltraError(`prompt variable "${k}" is missing`);
  if (typeof vars.episode !== "string" || typeof vars.actionSpace !== "string")
    throw new UltraError('prompt variables "episode" and "actionSpace" must be strings');
  const render = templates(configName, vars.maxCriticalStates, { episode: vars.episode, actionSpace: vars.actionSpace }, opts.dir);
  const system = `${render("shared/system.md")}\n\n${render("shared/output.md")}`;
  const user = render("shared/user.md", {
    task: render(envTemplate(configName)),
    reasoning: render("shared/reasoning.md"),
    cases: render("shared/cases.md"),
  });
  return { system, user };
}

/** How to write an action of this space, for the actionSpace variable. */
export function actionSpaceText(space: SpaceInfo): string {
  if (space.type === "Discrete") return `an integer from 0 to ${space.n! - 1}`;
  const dim = space.shape.reduce((a, b) => a * b, 1);
  const { low, high } = space;
  if (low && high && low.every((x) => x === low[0]) && high.every((x) => x === high[0]))
    return `a JSON list of ${dim} numbers, each in [${low[0]}, ${high[0]}]`;
  if (low && high)
    return `a JSON list of ${dim} numbers, number i in [low[i], high[i]] with low = [${low.join(", ")}] and high = [${high.join(", ")}]`;
  return `a JSON list of ${dim} numbers`;
}

/** Candidates mode (ts/describe/cards.ts): the env's description, worked cases and the action menu first, the
 * same for every episode (a local model evaluates that prefix once), then the episode's overview and cards. */
export function renderCandidatesPrompt(
  configName: string,
  vars: { overview: string; cards: string; menu: string; maxCriticalStates: number },
  opts: { dir?: string } = {},
): Prompt {
  const render = templates(configName, vars.maxCriticalStates, { actionSpace: "one of the action menu's changes (below)" }, opts.dir);
  return {
    system: render("candidates/system.md"),
    user: render("candidates/user.md", {
      task: render(envTemplate(configName)),
      cases: render("candidates/cases.md"),
      menu: vars.menu,
      episode: vars.overview,
      cards: vars.cards,
    }),
  };
}
