// `ultra doctor`: is everything in place? Versions, CUDA, a live round trip, MuJoCo and ALE envs.
import { existsSync } from "node:fs";
import type { SidecarClient } from "../bridge/client.js";
import { withSidecar } from "../bridge/sidecar.js";
import { pythonPath } from "../paths.js";
import { nodeVersions } from "../runinfo.js";
import { defineCommand, printJson } from "./common.js";

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

const SETUP = "run `make setup` in the project root";

async function roundTripUs(sc: SidecarClient, n = 200): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await sc.call("ping", {});
    times.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  return times.sort((a, b) => a - b)[Math.floor(n / 2)];
}

export async function doctor(): Promise<{ ok: boolean; checks: Check[]; versions: Record<string, unknown> }> {
  const checks: Check[] = [];
  let versions: Record<string, unknown> = {};
  try {
    versions = nodeVersions();
    checks.push({
      name: "node packages",
      ok: true,
      detail: `node ${versions.node}, zeromq.js ${versions["zeromq.js"]} (libzmq ${versions.libzmq}), msgpackr ${versions.msgpackr}`,
    });
  } catch (e) {
    checks.push({ name: "node packages", ok: false, detail: String(e), fix: `npm ci (${SETUP})` });
  }
  const python = pythonPath();
  if (!existsSync(python)) {
    checks.push({ name: "python", ok: false, detail: `${python} not found`, fix: SETUP });
    return { ok: false, checks, versions };
  }
  try {
    await withSidecar({}, async (sc) => {
      const h = sc.info;
      versions = { ...versions, ...h.versions };
      const missing = Object.entries(h.versions)
        .filter(([, v]) => !v)
        .map(([k]) => k);
      checks.push({
        name: "python packages",
        ok: missing.length === 0,
        detail: Object.entries(h.versions)
          .map(([k, v]) => `${k} ${v ?? "MISSING"}`)
          .join(", "),
        fix: missing.length ? `missing ${missing.join(", ")}: ${SETUP}` : undefined,
      });
      checks.push({
        name: "cuda",
        ok: true,
        detail: h.cuda ? `yes (${h.cuda_device}), default device ${h.device}` : "no (CPU only; pass --device cuda on a GPU machine)",
      });
      checks.push({
        name: "sidecar round trip",
        ok: true,
        detail: `${(await roundTripUs(sc)).toFixed(0)} µs median over ipc, protocol v${h.protocol}`,
      });
      for (const env_id of ["HalfCheetah-v5", "ALE/Pong-v5"]) {
        try {
          const { env, observation_space } = await sc.call("env_make", { spec: { env_id } });
          await sc.call("close", { handle: env });
          checks.push({ name: env_id, ok: true, detail: `observation ${JSON.stringify(observation_space.shape)}` });
        } catch (e) {
          checks.push({ name: env_id, ok: false, detail: (e as Error).message, fix: `reinstall gymnasium[mujoco] and ale-py: ${SETUP}` });
        }
      }
    });
  } catch (e) {
    checks.push({ name: "sidecar", ok: false, detail: (e as Error).message, fix: SETUP });
  }
  return { ok: checks.every((c) => c.ok), checks, versions };
}

export const doctorCommand = defineCommand(
  "doctor",
  "check node, python, torch, SB3, gymnasium, MuJoCo, ALE, ZeroMQ, CUDA and a live sidecar round trip",
  (y) => y.option("json", { type: "boolean", default: false }),
  async (a) => {
    const r = await doctor();
    if (a.json) printJson(r);
    else
      for (const c of r.checks)
        process.stdout.write(`${c.ok ? "ok  " : "FAIL"} ${c.name.padEnd(20)} ${c.detail}${c.fix ? `\n     fix: ${c.fix}` : ""}\n`);
    if (!r.ok) process.exitCode = 1;
  },
);
