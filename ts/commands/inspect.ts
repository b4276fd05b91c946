// `ultra inspect model.zip`: spaces, policy architecture, hyperparameters and SB3 version, read without
// unpickling. A one-shot look at Python objects, so it uses pythonia rather than the sidecar protocol.
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { UltraError } from "../errors.js";
import { ROOT, pythonPath } from "../paths.js";
import { defineCommand, printJson } from "./common.js";

export interface ModelDescription {
  path: string;
  algo: string;
  sb3_version: string;
  system_info: string[];
  observation_space: Record<string, unknown>;
  action_space: Record<string, unknown>;
  policy_class: string | null;
  policy_kwargs: unknown;
  hyperparameters: Record<string, unknown>;
  parameters: number;
  layers: { name: string; shape: number[] }[];
  files: string[];
  vec_normalize: string[];
}

export async function inspectModel(path: string): Promise<ModelDescription> {
  const file = resolve(path);
  if (!existsSync(file)) throw new UltraError(`model file not found: ${file}`);
  process.env.PYTHON_BIN = pythonPath(); // read by pythonia when it starts Python
  process.env.PYTHONPATH = [resolve(ROOT, "py"), process.env.PYTHONPATH].filter(Boolean).join(":");
  const { python } = await import("pythonia");
  try {
    const mod = await python("ultra_sidecar.inspect_model");
    const d = await (await mod.describe(file)).valueOf();
    if (d.error) throw new UltraError(`cannot inspect: ${d.error}`);
    return d;
  } finally {
    python.exit();
  }
}

export function formatDescription(d: ModelDescription): string {
  const space = (s: Record<string, unknown>) =>
    `${s.type} shape ${JSON.stringify(s.shape)}${s.dtype ? ` ${s.dtype}` : ""}${s.n ? ` n=${s.n}` : ""}`;
  const lines = [
    `${d.path}`,
    `  algorithm       ${d.algo} (Stable-Baselines3 ${d.sb3_version})`,
    `  policy          ${d.policy_class ?? "?"}  ${JSON.stringify(d.policy_kwargs ?? {})}`,
    `  observations    ${space(d.observation_space)}`,
    `  actions         ${space(d.action_space)}`,
    `  parameters      ${d.parameters}`,
    ...d.layers.map((l) => `    ${l.name.padEnd(40)} ${JSON.stringify(l.shape)}`),
    `  hyperparameters`,
    ...Object.entries(d.hyperparameters).map(([k, v]) => `    ${k.padEnd(20)} ${JSON.stringify(v)}`),
    `  normalisation   ${d.vec_normalize.length ? d.vec_normalize.join(", ") : "none beside the model"}`,
    `  saved on        ${d.system_info.map((l) => l.replace(/^- /, "")).join("; ")}`,
  ];
  return lines.join("\n");
}

export const inspectCommand = defineCommand(
  "inspect <model>",
  "show a model.zip's spaces, policy architecture, hyperparameters and SB3 version (nothing unpickled)",
  (y) => y.positional("model", { type: "string", demandOption: true }).option("json", { type: "boolean", default: false }),
  async (a) => {
    const d = await inspectModel(a.model as string);
    if (a.json) printJson(d);
    else process.stdout.write(formatDescription(d) + "\n");
  },
);
