// Real units: the identification prompt states the physical state. For each env that runs under VecNormalize,
// a real episode from the real sidecar (its VecNormalize statistics trained for a few hundred steps, so the
// policy's obs are far from the raw ones) is rendered as identify renders it (episodePrompt), and the printed
// numbers are checked against each step's snapshot: MuJoCo's mjSTATE_INTEGRATION vector [time, qpos, qvel, ...].
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Snapshot } from "../ts/bridge/ops.js";
import type { Sidecar } from "../ts/bridge/sidecar.js";
import { envSpec, resolveEnv } from "../ts/config.js";
import { num } from "../ts/describe/format.js";
import { interpreterFor } from "../ts/describe/envs/index.js";
import { collectEpisodes, type Episode } from "../ts/ultra/episodes.js";
import { episodePrompt } from "../ts/ultra/phases/identify.js";
import { resolveSettings } from "../ts/ultra/settings.js";
import type { NDArray } from "../ts/protocol.js";
import { TINY_PPO, startSidecar } from "./helpers.js";

type Range = readonly [number, number];
const deg = (d: number) => (d * Math.PI) / 180;
// <joint range> in gymnasium/envs/mujoco/assets/*.xml (hopper.xml and walker2d.xml give degrees)
const CHEETAH_RANGES: Record<string, Range> = {
  "back thigh": [-0.52, 1.05],
  "back shin": [-0.785, 0.785],
  "back foot": [-0.4, 0.785],
  "front thigh": [-1, 0.7],
  "front shin": [-1.2, 0.87],
  "front foot": [-0.5, 0.5],
};
const LEG: Record<string, Range> = { thigh: [deg(-150), 0], leg: [deg(-150), 0], foot: [deg(-45), deg(45)] };
const HOPPER_RANGES = LEG;
const WALKER_RANGES = Object.fromEntries(["right", "left"].flatMap((side) => Object.entries(LEG).map(([k, r]) => [`${side} ${k}`, r])));
const REACHER_RANGES: Record<string, Range> = { elbow: [-3, 3] }; // the shoulder is unlimited
// MuJoCo's joint limits are soft constraints: a joint driven against one overshoots it (by up to 0.28 rad in
// these episodes, Walker2d; HalfCheetah 0.19, Reacher 0.12). Normalised obs land far outside (-1.64 rad for a
// back thigh that bends from -0.52); the exact check is against qpos (expectPhysical).
const LIMIT_SLACK = 0.35;

/** One printed number and the physical value it must show. */
interface Check {
  /** the text it is printed in: "joints" and "speeds" are the joint-angle and joint-velocity lists */
  part?: "joints" | "speeds";
  label: string;
  /** regex source of what precedes the number, when it is not `label` */
  before?: string;
  value: number;
  unit?: string;
  /** beyond rounding (Reacher's fingertip, see below) */
  tol?: number;
}

interface Physics {
  qpos: number[];
  qvel: number[];
}

interface UnitCase {
  name: string;
  nq: number;
  nv: number;
  ranges: Record<string, Range>;
  checks: (p: Physics) => Check[];
  /** the summary's key features as physics, for its per-segment ranges */
  keys: Record<string, (p: Physics) => number>;
}

const clip10 = (x: number) => Math.min(10, Math.max(-10, x)); // Hopper/Walker2d clip observed velocities to [-10, 10]
const wrap = (a: number) => Math.atan2(Math.sin(a), Math.cos(a)); // Reacher observes cos/sin of its angles

function cheetahChecks({ qpos, qvel }: Physics): Check[] {
  const joints = Object.keys(CHEETAH_RANGES);
  return [
    { label: "forward velocity", value: qvel[0], unit: "m/s" },
    { label: "torso pitch", value: qpos[2], unit: "rad" },
    { label: "height change", value: qpos[1], unit: "m" },
    { label: "vertical velocity", value: qvel[1], unit: "m/s" },
    { label: "pitch rate", value: qvel[2], unit: "rad/s" },
    ...joints.map((label, i) => ({ part: "joints" as const, label, value: qpos[3 + i] })),
    ...joints.map((label, i) => ({ part: "speeds" as const, label, value: qvel[3 + i] })),
  ];
}

const uprightChecks =
  (ranges: Record<string, Range>) =>
  ({ qpos, qvel }: Physics): Check[] => {
    const joints = Object.keys(ranges);
    return [
      { label: "torso height", value: qpos[1], unit: "m" },
      { label: "torso angle", value: qpos[2], unit: "rad" },
      { label: "forward velocity", value: clip10(qvel[0]), unit: "m/s" },
      { label: "vertical velocity", value: clip10(qvel[1]), unit: "m/s" },
      { label: "torso angular velocity", value: clip10(qvel[2]), unit: "rad/s" },
      ...joints.map((label, i) => ({ part: "joints" as const, label, value: qpos[3 + i] })),
      ...joints.map((label, i) => ({ part: "speeds" as const, label, value: clip10(qvel[3 + i]) })),
    ];
  };

/** reacher.xml: link 0.1 m to the elbow, fingertip 0.11 m past it. */
const fingertip = (q: number[]) => [
  0.1 * Math.cos(q[0]) + 0.11 * Math.cos(q[0] + q[1]),
  0.1 * Math.sin(q[0]) + 0.11 * Math.sin(q[0] + q[1]),
];
const reacherDistance = ({ qpos }: Physics) => {
  const [x, y] = fingertip(qpos);
  return Math.hypot(x - qpos[2], y - qpos[3]);
};
// The env reads the fingertip from MuJoCo's body positions, which mj_step leaves from an RK4 stage, not the
// step's end state: allow 1 mm and a quarter of what the arm moves in one 0.01 s substep (measured: under half).
const substepDrift = ({ qvel }: Physics) => 0.001 + 0.25 * 0.01 * (0.21 * Math.abs(qvel[0]) + 0.11 * Math.abs(qvel[1]));

function reacherChecks(p: Physics): Check[] {
  const { qpos, qvel } = p;
  const [x, y] = fingertip(qpos);
  const drift = substepDrift(p);
  return [
    { label: "fingertip", value: reacherDistance(p), unit: "m", tol: drift },
    { label: "fingertip - target: x", value: x - qpos[2], tol: drift },
    { label: "y", value: y - qpos[3], tol: drift },
    { label: "target x", before: "target at \\(", value: qpos[2] },
    { label: "target y", before: "target at \\([+-]\\d+\\.\\d+, ", value: qpos[3] },
    { part: "joints", label: "shoulder", value: wrap(qpos[0]), unit: "rad" },
    { part: "joints", label: "elbow", value: wrap(qpos[1]), unit: "rad" },
    { part: "speeds", label: "shoulder", value: qvel[0], unit: "rad/s" },
    { part: "speeds", label: "elbow", value: qvel[1], unit: "rad/s" },
  ];
}

const CASES: UnitCase[] = [
  {
    name: "HalfCheetah",
    nq: 9,
    nv: 9,
    ranges: CHEETAH_RANGES,
    checks: cheetahChecks,
    keys: { forward_velocity: (p) => p.qvel[0], pitch: (p) => p.qpos[2], height: (p) => p.qpos[1] },
  },
  {
    name: "Hopper",
    nq: 6,
    nv: 6,
    ranges: HOPPER_RANGES,
    checks: uprightChecks(HOPPER_RANGES),
    keys: {
      forward_velocity: (p) => clip10(p.qvel[0]),
      height: (p) => p.qpos[1],
      angle: (p) => p.qpos[2],
      angle_margin: (p) => 0.2 - Math.abs(p.qpos[2]),
    },
  },
  {
    name: "Walker2d",
    nq: 9,
    nv: 9,
    ranges: WALKER_RANGES,
    checks: uprightChecks(WALKER_RANGES),
    keys: {
      forward_velocity: (p) => clip10(p.qvel[0]),
      height: (p) => p.qpos[1],
      angle: (p) => p.qpos[2],
      angle_margin: (p) => 1 - Math.abs(p.qpos[2]),
    },
  },
  {
    name: "Reacher",
    nq: 4,
    nv: 4,
    ranges: REACHER_RANGES,
    checks: reacherChecks,
    keys: { shoulder_velocity: (p) => p.qvel[0], elbow_velocity: (p) => p.qvel[1] },
  },
  // v4: RICE's Reacher-v2 layout (11 dims, a trailing always-zero z), Reacher's settings
  {
    name: "Reacher-v4",
    nq: 4,
    nv: 4,
    ranges: REACHER_RANGES,
    checks: reacherChecks,
    keys: { shoulder_velocity: (p) => p.qvel[0], elbow_velocity: (p) => p.qvel[1] },
  },
];

// ---- reading the text back ----------------------------------------------------------------------------

const NUM = "([+-]?\\d+\\.(\\d+))";
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The joint-angle or joint-velocity list of a state description ("joint angles (rad): a +1.00, b -0.20; ..."). */
function part(text: string, which: "joints" | "speeds"): string {
  const m = new RegExp(which === "joints" ? "joint angles[^:]*: ([^;]*)" : "joint velocities[^:]*: ([^;]*)").exec(text);
  expect(m, `no joint ${which === "joints" ? "angles" : "velocities"} in "${text}"`).not.toBeNull();
  return m![1];
}

/** The number printed after the check's label, with its decimals. */
function printed(text: string, check: Check): { value: number; digits: number } {
  const before = check.before ?? `(?:^|[\\s(,:])${escape(check.label)} `;
  const unit = check.unit ? ` ${escape(check.unit)}\\b` : "";
  const m = new RegExp(`${before}${NUM}${unit}`).exec(text);
  expect(m, `"${check.label} <number>${check.unit ? ` ${check.unit}` : ""}" in "${text}"`).not.toBeNull();
  return { value: Number(m![1]), digits: m![2].length };
}

/** |printed - physical| within the printed precision (half a unit of the last digit). */
function expectShown(shown: { value: number; digits: number }, value: number, what: string, tol = 0) {
  const err = Math.abs(shown.value - value);
  expect(err, `${what}: printed ${shown.value}, physical ${value}`).toBeLessThanOrEqual(0.5 * 10 ** -shown.digits + 1e-9 + tol);
}

function physics(snap: Snapshot, c: UnitCase): Physics {
  const base = snap.base as { kind: string; state: NDArray };
  expect(base.kind).toBe("mujoco");
  const s = Array.from(base.state.data, Number); // mjSTATE_INTEGRATION: time, qpos (nq), qvel (nv), act, ...
  return { qpos: s.slice(1, 1 + c.nq), qvel: s.slice(1 + c.nq, 1 + c.nq + c.nv) };
}

/** Every number of a state description against the physical state, and its joint angles within their ranges. */
function expectPhysical(text: string, p: Physics, c: UnitCase, where: string) {
  for (const check of c.checks(p)) {
    const scope = check.part ? part(text, check.part) : text;
    expectShown(printed(scope, check), check.value, `${where}: ${check.part === "speeds" ? "velocity of " : ""}${check.label}`, check.tol);
  }
  expectJointsInRange(text, c, where);
}

function expectJointsInRange(text: string, c: UnitCase, where: string) {
  const joints = part(text, "joints");
  for (const [label, [lo, hi]] of Object.entries(c.ranges)) {
    const { value } = printed(joints, { label, value: NaN });
    expect(value, `${where}: ${label} ${value} rad outside its joint range [${num(lo, 3)}, ${num(hi, 3)}]`).toBeGreaterThanOrEqual(
      lo - LIMIT_SLACK,
    );
    expect(value, `${where}: ${label} ${value} rad outside its joint range [${num(lo, 3)}, ${num(hi, 3)}]`).toBeLessThanOrEqual(
      hi + LIMIT_SLACK,
    );
  }
}

const row = (a: NDArray, t: number) => Array.from(a.row(t) as ArrayLike<number>, Number);

// ---- the test -----------------------------------------------------------------------------------------

describe("real units: the prompt shows the physical state", () => {
  let sc: Sidecar;
  beforeAll(async () => {
    sc = await startSidecar();
  });
  afterAll(async () => {
    await sc?.close();
  });

  for (const c of CASES) {
    it(`${c.name}: describe() and the summary print qpos/qvel to their precision, joints within their ranges`, async () => {
      const cfg = resolveEnv(c.name);
      expect(cfg.normalize, `${c.name} runs under VecNormalize`).toBeTruthy();
      const { env, action_space } = await sc.call("env_make", { spec: envSpec(cfg, { seed: 3, training: true }) });
      const { model } = await sc.call("model_new", { env, ppo: TINY_PPO });
      await sc.call("model_learn", { model, steps: 256 }); // VecNormalize statistics move away from (0, 1)
      const [ep]: Episode[] = await collectEpisodes(sc, { model, env, episodes: 1, deterministic: false });
      for (const h of [model, env]) await sc.call("close", { handle: h });
      const n = ep.length;
      expect(ep.snapshots.length).toBe(n);
      const steps = Array.from({ length: n }, (_, t) => physics(ep.snapshots[t], c));

      // the policy's obs are normalised, so a wrong choice of array shows
      const gap = Math.max(...Array.from(ep.obs.data, (x, i) => Math.abs(Number(x) - Number(ep.raw_obs.data[i]))));
      expect(gap, "normalised obs differ clearly from raw obs").toBeGreaterThan(0.5);

      // every step's state description
      const interp = interpreterFor(cfg.name);
      for (let t = 0; t < n; t++) {
        const text = interp.describe(row(ep.raw_obs, t));
        expectPhysical(text, steps[t], c, `${c.name} step ${t}`);
        if (c.name === "Hopper" || c.name === "Walker2d") {
          // a step's state is the one before its action: an episode's states are healthy, the state after the
          // last action (which ends it) is not one of them; so UNHEALTHY can only show at the terminal step
          const [zLo, zHi] = c.name === "Hopper" ? [0.7, Infinity] : [0.8, 2];
          const aMax = c.name === "Hopper" ? 0.2 : 1;
          const { qpos } = steps[t];
          const { qvel } = steps[t];
          const stateOk = c.name !== "Hopper" || [...qpos.slice(2), ...qvel].every((x) => Math.abs(x) < 100);
          const healthy = zLo < qpos[1] && qpos[1] < zHi && Math.abs(qpos[2]) < aMax && stateOk;
          expect(interp.features(row(ep.raw_obs, t)).healthy, `${c.name} step ${t}: health of the physical state`).toBe(healthy ? 1 : 0);
          if (t < n - 1) {
            expect(text, `${c.name} step ${t}`).not.toContain("UNHEALTHY");
            const margins = `healthy (margins: height ${num(Math.min(qpos[1] - zLo, zHi - qpos[1]))} m, angle ${num(aMax - Math.abs(qpos[2]))} rad)`;
            expect(text, `${c.name} step ${t}`).toContain(margins);
          }
        }
      }

      // the prompt identify writes: every described state is the physical state of its step
      const settings = resolveSettings({ profile: "paper", envOverrides: cfg.ultra }).identify;
      const { summary, prompt } = episodePrompt(ep, cfg.name, {
        maxChars: settings.prompt_chars,
        minSeparation: settings.min_separation,
        maxCriticalStates: settings.max_critical_states,
        actionSpace: action_space,
      });
      // the rest of the prompt is the template's fixed text (its worked case has made-up numbers)
      expect(prompt.user).toContain(summary.text);
      const described = [...summary.text.matchAll(/Value drop at step (\d+): .*? State: (.*?)\. Action: /g)];
      expect(described.length, "the prompt describes its value drops' states").toBeGreaterThan(0);
      for (const [, step, text] of described) expectPhysical(text, steps[Number(step)], c, `${c.name} prompt, state at step ${step}`);
      // ... its joint angles all lie in their ranges, wherever they are printed
      const lists = [...summary.text.matchAll(/joint angles[^;]*;/g)].map((m) => m[0]);
      expect(lists.length).toBe(described.length);
      for (const list of lists) expectJointsInRange(list, c, `${c.name} prompt`);
      if (c.name === "Hopper" || c.name === "Walker2d") expect(summary.text).not.toContain("UNHEALTHY");

      // ... and each segment's key features range over the physical values of its steps
      expect(summary.segments.some((seg) => seg.detail !== "minimal")).toBe(true);
      for (const seg of summary.segments) {
        if (seg.detail === "minimal") continue; // no feature line
        for (const [key, of] of Object.entries(c.keys)) {
          const f = seg.features[key];
          expect(f, `${c.name} summary feature ${key}`).toBeDefined();
          const vals = steps.slice(seg.start, seg.end + 1).map(of);
          const where = `${c.name} steps ${seg.start}-${seg.end}: ${f.label}`;
          const line = new RegExp(`${escape(f.label)} mean ${NUM}, range ${NUM} to ${NUM}`).exec(seg.text);
          expect(line, `${where} in "${seg.text}"`).not.toBeNull();
          const [lo, hi] = [Number(line![3]), Number(line![5])];
          expectShown({ value: lo, digits: line![4].length }, Math.min(...vals), `${where} min`);
          expectShown({ value: hi, digits: line![6].length }, Math.max(...vals), `${where} max`);
        }
      }
    });
  }
});
