// State interpreters (ts/describe/envs/) and episode summaries (ts/describe/summarize.ts). Layouts are checked against
// fixed vectors: synthetic ones with a distinct value per index, and real ones recorded from gymnasium 1.4.0
// (mujoco 4.0.0) with the numbers the env itself reported for them.
import { describe, expect, it } from "vitest";
import { interpreterFor } from "../ts/describe/envs/index.js";
import { num, signed } from "../ts/describe/format.js";
import { summarizeEpisode } from "../ts/describe/summarize.js";
import { NDArray } from "../ts/protocol.js";

/** obs[i] = i + 0.5, so every feature shows which index it was read from. */
const indexed = (n: number) => Array.from({ length: n }, (_, i) => i + 0.5);

function expectLayout(env: string, n: number, table: Record<string, number>) {
  const f = interpreterFor(env).features(indexed(n));
  for (const [name, index] of Object.entries(table)) expect([name, f[name]]).toEqual([name, index + 0.5]);
}

// Recorded with gymnasium: Hopper-v5 / Walker2d-v5 reset(seed=0), then uniform random actions (rng seed 0)
// until termination; the last healthy observation and the terminal one.
const HOPPER_LAST_HEALTHY = [
  1.2079277903453056, -0.1763091866040498, -0.15105354323227144, -0.017263425511255755, -0.023180792846142207, -0.5428901247680753,
  -0.061740390973185164, -3.1034552821872, -3.8626607526567924, 1.4080672591673067, 0.22781563974378716,
];
const HOPPER_TERMINAL = [
  1.2069654520867508, -0.20124820147146058, -0.18289230539576076, -0.00500237856784929, -0.01579516511733233, -0.4873959687399419,
  -0.1515937726783717, -3.1264311859483693, -4.107120355461429, 1.625235490906582, 1.562906531226227,
];
const WALKER_LAST_HEALTHY = [
  0.9924256118983512, -0.9397753569861802, -0.3686227245809351, -1.3434931090488866, 0.9758285724554605, -0.5522453306498837,
  -1.0502841789881172, 0.5558342234154102, -0.31449622706673147, -1.5880030132865663, -10.0, -10.0, 4.780443532208848, -3.878010663602117,
  -10.0, 2.778524268034234, -0.5288895346936728,
];
const WALKER_TERMINAL = [
  0.9811935812201291, -1.0052760587651084, -0.46253677768853263, -1.3086512553110634, 0.9076026987163022, -0.6417982357977033,
  -1.0212675541713159, 0.6064779435360302, -0.04634919139638485, -1.205021875735256, -6.305936873371587, -9.42679111140458,
  3.957354213958002, -10.0, -9.334143712984062, 3.556720253996634, 10.0,
];
// Reacher-v5 reset(seed=3), three steps of [0.5, -0.3]; the env's info["reward_dist"] was -0.3727991760177059.
const REACHER_OBS = [
  0.9956400963682951, 0.9874242653742822, 0.0932780708619768, -0.15809275805696812, -0.16234854310384034, -0.026749223905410485,
  5.818227850433534, -3.4989779757667794, 0.37167783978583646, 0.028893062344004395,
];

describe("state interpreters", () => {
  it("HalfCheetah reads the v5 layout: index 8 is the forward velocity", () => {
    const obs = new Array(17).fill(0);
    obs[8] = 3.0;
    const hc = interpreterFor("HalfCheetah");
    expect(hc.features(obs).forward_velocity).toBe(3.0);
    expect(hc.describe(obs)).toContain("forward velocity +3.00 m/s");
    expectLayout("HalfCheetah", 17, {
      height: 0,
      pitch: 1,
      bthigh_angle: 2,
      bshin_angle: 3,
      bfoot_angle: 4,
      fthigh_angle: 5,
      fshin_angle: 6,
      ffoot_angle: 7,
      forward_velocity: 8,
      vertical_velocity: 9,
      pitch_rate: 10,
      bthigh_velocity: 11,
      bshin_velocity: 12,
      bfoot_velocity: 13,
      fthigh_velocity: 14,
      fshin_velocity: 15,
      ffoot_velocity: 16,
    });
  });

  it("HalfCheetah says when the cheetah is on its back, and refuses a wrong-sized observation", () => {
    const obs = new Array(17).fill(0);
    obs[1] = 2.0;
    expect(interpreterFor("HalfCheetah").describe(obs)).toContain("flipped onto its back");
    obs[1] = -0.3;
    expect(interpreterFor("HalfCheetah").describe(obs)).toContain("nose up");
    expect(() => interpreterFor("HalfCheetah").features(new Array(18).fill(0))).toThrow(/17 numbers, got 18/);
  });

  it("Hopper reads the v5 layout and its healthy ranges", () => {
    expectLayout("Hopper", 11, {
      height: 0,
      angle: 1,
      thigh_angle: 2,
      leg_angle: 3,
      foot_angle: 4,
      forward_velocity: 5,
      vertical_velocity: 6,
      angular_velocity: 7,
      thigh_velocity: 8,
      leg_velocity: 9,
      foot_velocity: 10,
    });
    const hop = interpreterFor("Hopper");
    const healthy = hop.features(HOPPER_LAST_HEALTHY);
    expect(healthy.healthy).toBe(1);
    expect(healthy.angle_margin).toBeCloseTo(0.2 - 0.1763091866040498, 12);
    expect(hop.describe(HOPPER_LAST_HEALTHY)).toContain("leaning back");
    // the env terminated here: the torso angle -0.2012 left (-0.2, 0.2)
    expect(hop.features(HOPPER_TERMINAL).healthy).toBe(0);
    expect(hop.describe(HOPPER_TERMINAL)).toMatch(/UNHEALTHY \(torso angle not between -0\.20 and 0\.20 rad\)/);
    const fallen = [...HOPPER_LAST_HEALTHY];
    fallen[0] = 0.69;
    expect(hop.describe(fallen)).toMatch(/UNHEALTHY \(torso height not above 0\.70 m\)/);
  });

  it("Walker2d reads the v5 layout (right leg, then left) and its healthy ranges", () => {
    expectLayout("Walker2d", 17, {
      height: 0,
      angle: 1,
      right_thigh_angle: 2,
      right_leg_angle: 3,
      right_foot_angle: 4,
      left_thigh_angle: 5,
      left_leg_angle: 6,
      left_foot_angle: 7,
      forward_velocity: 8,
      vertical_velocity: 9,
      angular_velocity: 10,
      right_thigh_velocity: 11,
      right_leg_velocity: 12,
      right_foot_velocity: 13,
      left_thigh_velocity: 14,
      left_leg_velocity: 15,
      left_foot_velocity: 16,
    });
    const w = interpreterFor("Walker2d");
    expect(w.features(WALKER_LAST_HEALTHY).healthy).toBe(1);
    expect(w.features(WALKER_TERMINAL).healthy).toBe(0);
    expect(w.describe(WALKER_TERMINAL)).toContain("torso angle not between -1.00 and 1.00 rad");
    expect(w.actionSemantics).toBe("6 torques in [-1, 1]: right thigh, right leg, right foot, left thigh, left leg, left foot");
  });

  it("Reacher's distance is the env's own reward_dist, and angles come from cos/sin", () => {
    const r = interpreterFor("Reacher");
    const f = r.features(REACHER_OBS);
    expect(f.distance).toBeCloseTo(0.3727991760177059, 12);
    expect(f.shoulder_angle).toBeCloseTo(Math.atan2(REACHER_OBS[2], REACHER_OBS[0]), 12);
    expect(f.elbow_angle).toBeCloseTo(Math.atan2(REACHER_OBS[3], REACHER_OBS[1]), 12);
    expect(f.shoulder_velocity).toBe(REACHER_OBS[6]);
    // forward kinematics of the 0.1 m + 0.11 m arm lands on target + (fingertip - target)
    const q0 = f.shoulder_angle,
      q1 = f.elbow_angle;
    expect(0.1 * Math.cos(q0) + 0.11 * Math.cos(q0 + q1)).toBeCloseTo(f.fingertip_x, 4);
    expect(0.1 * Math.sin(q0) + 0.11 * Math.sin(q0 + q1)).toBeCloseTo(f.fingertip_y, 4);
    expect(r.describe(REACHER_OBS)).toContain("fingertip 0.373 m from the target");
    // v4's layout (RICE's Reacher-v2 agents) appends an always-zero z: the same features
    expect(r.features([...REACHER_OBS, 0])).toEqual(f);
    expect(() => r.features(new Array(12).fill(0))).toThrow(/10 numbers/);
  });

  it("Pong reads the documented RAM addresses, and says so when there is no RAM", () => {
    const ram = new Array(128).fill(0);
    Object.assign(ram, { 51: 134, 50: 22, 49: 140, 54: 170, 14: 3, 13: 5 });
    const p = interpreterFor("Pong");
    expect(p.features([], ram)).toMatchObject({
      player_y: 134,
      opponent_y: 22,
      ball_x: 140,
      ball_y: 170,
      player_score: 3,
      opponent_score: 5,
      ball_visible: 1,
      ball_offset: 29,
      ball_distance_x: 48,
    });
    const text = p.describe([], ram);
    expect(text).toContain("score: you 3, opponent 5");
    expect(text).toContain("48 px left of your paddle's face, 29 px below its centre");
    ram[54] = 0; // no ball drawn between points
    expect(p.features([], ram).ball_visible).toBe(0);
    expect(p.describe([], ram)).toContain("ball not in play");
    expect(p.features([])).toEqual({});
    expect(p.describe([])).toMatch(/only image frames/);
    expect(() => p.features([], new Array(100).fill(0))).toThrow(/128 bytes/);
  });

  it("actions: torques clipped as the env applies them, with their control cost; Pong's discrete moves", () => {
    expect(interpreterFor("HalfCheetah").describeAction([2, 0, 0, 0, 0, -0.5])).toBe(
      "torques back thigh +1.00, back shin +0.00, back foot +0.00, front thigh +0.00, front shin +0.00, front foot -0.50 (control cost 0.125)",
    );
    expect(interpreterFor("Hopper").describeAction(new Float32Array([1, 1, 1]))).toContain("(control cost 0.003)");
    expect(interpreterFor("Pong").describeAction(2)).toBe("2 RIGHT (move paddle up)");
    expect(interpreterFor("Pong").describeAction([3])).toBe("3 LEFT (move paddle down)");
    expect(() => interpreterFor("Pong").describeAction(6)).toThrow(/not one of 0\.\.5/);
    expect(() => interpreterFor("Reacher").describeAction([0.1])).toThrow(/action of 2 numbers/);
  });

  it("names resolve like config names; sparse variants share the dense layout; unknown envs get obs[i]", () => {
    for (const n of ["HalfCheetah", "halfcheetah", "HalfCheetah-v5"]) expect(interpreterFor(n).name).toBe("HalfCheetah");
    expect(interpreterFor("ALE/Pong-v5").name).toBe("Pong");
    expect(interpreterFor("PongNoFrameskip-v4").name).toBe("Pong");
    const sparse = interpreterFor("SparseHopper");
    expect(sparse.name).toBe("SparseHopper");
    expect(sparse.features(HOPPER_TERMINAL).healthy).toBe(0);
    expect(interpreterFor("ultra/SparseWalker2d-v5").name).toBe("SparseWalker2d");
    expect(interpreterFor("sparse-halfcheetah").name).toBe("SparseHalfCheetah");
    expect(interpreterFor("SparsePong").name).toBe("SparsePong"); // no sparse Pong: the generic interpreter
    const g = interpreterFor("CartPole-v1");
    expect(g.name).toBe("CartPole-v1");
    expect(g.features([0.5, -1])).toEqual({ "obs[0]": 0.5, "obs[1]": -1 });
    expect(g.describe([0.5, -1])).toBe("obs[0] +0.500, obs[1] -1.000");
    expect(g.describe(new Array(100).fill(1))).toMatch(/^100 numbers, of which obs\[0\] \+1\.000, .*mean 1\.000/);
  });

  it("numbers are fixed-digit and never negative zero", () => {
    expect(num(-0.0001)).toBe("0.00");
    expect(signed(-0.0001)).toBe("+0.00");
    expect(signed(1.005, 1)).toBe("+1.0");
    expect(num(NaN)).toBe("NaN");
  });
});

// ---- summaries ----------------------------------------------------------------------------------------

const N = 1000;
const DROPS = { 137: 40, 512: 90, 873: 25 }; // step -> size of a planted value drop after it

function syntheticCheetah(n = N) {
  const rawObs = Array.from({ length: n }, (_, t) =>
    Array.from({ length: 17 }, (_, i) => (i === 8 ? 3 + Math.sin(t / 40) : 0.3 * Math.sin(t / 17 + i))),
  );
  const actions = Array.from({ length: n }, (_, t) => Array.from({ length: 6 }, (_, i) => Math.cos(t / 9 + i)));
  const rewards = rawObs.map((o) => o[8] - 0.3);
  let v = 300;
  const values = Array.from({ length: n }, (_, t) => {
    const here = v;
    v += 0.01 * Math.sin(t / 5) - ((DROPS as Record<number, number>)[t] ?? 0);
    return here;
  });
  return { rawObs, actions, rewards, values };
}

describe("summarizeEpisode", () => {
  const hc = interpreterFor("HalfCheetah");
  const ep = syntheticCheetah();

  it("fits maxChars at every budget and keeps every planted value-drop step", () => {
    for (const maxChars of [600, 1200, 2500, 5000, 10000, 40000]) {
      const s = summarizeEpisode(ep, hc, { maxChars });
      expect(s.text.length, `maxChars ${maxChars}`).toBeLessThanOrEqual(maxChars);
      for (const step of Object.keys(DROPS)) expect(s.text, `maxChars ${maxChars}`).toMatch(new RegExp(`step ${step}\\b`));
      expect(s.topDrops.slice(0, 3).map((d) => d.step)).toEqual([512, 137, 873]);
      // segments tile the episode
      expect(s.segments[0].start).toBe(0);
      expect(s.segments.at(-1)!.end).toBe(N - 1);
      s.segments.forEach((seg, i) => i && expect(seg.start).toBe(s.segments[i - 1].end + 1));
      // no segment ever loses the indices of its own drops
      for (const seg of s.segments) for (const d of seg.drops) expect(seg.text).toMatch(new RegExp(`\\b${d.step}\\b`));
    }
  });

  it("a generous budget describes the critical candidates in full; a tight one degrades the least informative segments first", () => {
    const wide = summarizeEpisode(ep, hc, { maxChars: 40000 });
    expect(wide.segments.every((s) => s.detail === "full")).toBe(true);
    expect(wide.text).toContain(`Value drop at step 512: V ${num(ep.values[512])} -> ${num(ep.values[513])} (-89.99`);
    expect(wide.text).toContain(`State: ${hc.describe(ep.rawObs[512])}. Action: ${hc.describeAction(ep.actions[512])}.`);

    const tight = summarizeEpisode(ep, hc, { maxChars: 4000, segmentSteps: 100 });
    const rank = (d: string) => ["full", "brief", "minimal"].indexOf(d);
    const worst = tight.segments.find((s) => s.start <= 512 && 512 <= s.end)!;
    expect(worst.detail).toBe("full");
    expect(tight.segments.some((s) => s.detail !== "full")).toBe(true);
    for (const s of tight.segments) expect(rank(worst.detail)).toBeLessThanOrEqual(rank(s.detail));
  });

  it("uses real step indices and the requested segment size", () => {
    const s = summarizeEpisode({ ...ep, startStep: 2000 }, hc, { maxChars: 8000, segmentSteps: 250 });
    expect(s.segments.map((x) => [x.start, x.end])).toEqual([
      [2000, 2249],
      [2250, 2499],
      [2500, 2749],
      [2750, 2999],
    ]);
    expect(s.text).toMatch(/step 2512\b/);
    expect(s.text).not.toMatch(/step 512\b/);
    expect(s.segments[0].return).toBeCloseTo(
      ep.rewards.slice(0, 250).reduce((a, b) => a + b, 0),
      6,
    );
  });

  it("is deterministic, and refuses a budget too small to keep the drop steps", () => {
    expect(summarizeEpisode(ep, hc, { maxChars: 3000 }).text).toBe(summarizeEpisode(ep, hc, { maxChars: 3000 }).text);
    expect(() => summarizeEpisode(ep, hc, { maxChars: 150 })).toThrow(/maxChars 150 is too small/);
    expect(() => summarizeEpisode({ ...ep, values: ep.values.slice(1) }, hc, { maxChars: 3000 })).toThrow(
      /values has 999 entries for 1000 steps/,
    );
    // an Episode passed whole has obs (normalised) and raw_obs, never rawObs: refused, not read in the wrong units
    const { rawObs, ...rest } = ep;
    expect(() => summarizeEpisode({ ...rest, obs: rawObs, raw_obs: rawObs } as never, hc, { maxChars: 3000 })).toThrow(
      /rawObs .* is missing/,
    );
  });

  it("takes NDArrays from the sidecar (Pong: frames, int64 actions, RAM) and lists sparse rewards", () => {
    const n = 300;
    const frames = new NDArray("uint8", [n, 4, 8, 8], new Uint8Array(n * 256));
    const actions = new NDArray(
      "int64",
      [n],
      BigInt64Array.from({ length: n }, (_, t) => BigInt(t % 6)),
    );
    const ramData = new Uint8Array(n * 128);
    for (let t = 0; t < n; t++) {
      ramData[t * 128 + 51] = 100;
      ramData[t * 128 + 49] = 100 + (t % 80);
      ramData[t * 128 + 54] = 120;
      ramData[t * 128 + 13] = t >= 250 ? 1 : 0;
    }
    const ram = new NDArray("uint8", [n, 128], ramData);
    const rewards = NDArray.float32(Array.from({ length: n }, (_, t) => (t === 250 ? -1 : 0)));
    const values = NDArray.float32(Array.from({ length: n }, (_, t) => (t <= 230 ? 0.1 : -0.6)));
    const s = summarizeEpisode({ rawObs: frames, actions, rewards, values, ram }, interpreterFor("Pong"), { maxChars: 6000 });
    expect(s.text.length).toBeLessThanOrEqual(6000);
    expect(s.topDrops[0]).toMatchObject({ step: 230 });
    expect(s.text).toContain("The reward is 0 until step 250.");
    expect(s.text).toContain("nonzero rewards: -1.00 at step 250");
    expect(s.text).toMatch(/Value drop at step 230: .*State: score: you 0, opponent 0; ball at x 170, y 120.*Action: 2 RIGHT/);
    expect(s.text).toContain("opponent score 1 at step 299");
  });
});
