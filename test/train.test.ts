// `ultra train` end to end on the smoke profile: real sidecar, real SB3, real envs, the rollout adviser. Verification
// is off here so that the tables are never empty (test/verify.test.ts checks verification itself): the arms must
// then really reset, override and reward, and differ from continue PPO.
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { checkRunDir } from "../ts/ultra/run.js";
import { readJson as json, ultra } from "./helpers.js";

describe("ultra train", () => {
  const root = mkdtempSync(join(tmpdir(), "ultra-train-"));
  const out = join(root, "cheetah");

  beforeAll(async () => {
    const r = await ultra(
      "train",
      "--env",
      "HalfCheetah",
      "--profile",
      "smoke",
      "--seed",
      "1",
      "--adviser",
      "rollout",
      "--verify",
      "off",
      "--out",
      out,
    );
    expect(r.code, r.stderr).toBe(0);
  });

  it("leaves a complete run directory", () => {
    const rec = json(join(out, "run.json"));
    expect(Object.keys(rec.phases)).toEqual(["base", "identify", "improve", "evaluate", "report"]);
    expect(rec).toMatchObject({ env_id: "HalfCheetah-v5", seed: 1, profile: "smoke", settings: { variant: "RA", adviser: "rollout" } });
    expect(rec.versions["stable-baselines3"]).toBeTruthy();
    const ev = json(join(out, "eval.json"));
    expect(Object.keys(ev.arms)).toEqual(["base", "ultra_RA", "continue_ppo", "rice_reset", "random_critical"]);
    for (const a of Object.values<any>(ev.arms)) expect(a.returns).toHaveLength(2);
    expect(readFileSync(join(out, "curves.png")).subarray(1, 4).toString()).toBe("PNG");
    for (const f of [
      "base/model.zip",
      "refined/model.zip",
      "baselines/rice_reset/model.zip",
      "trajectories/episode-000.msgpack",
      "identify/episode-001.prompt.md",
    ])
      expect(() => readFileSync(join(out, f)), f).not.toThrow();
  });

  it("the same seed gives bit-identical critical states and returns", async () => {
    const again = join(root, "again");
    const r = await ultra(
      "train",
      "--env",
      "HalfCheetah",
      "--profile",
      "smoke",
      "--seed",
      "1",
      "--adviser",
      "rollout",
      "--verify",
      "off",
      "--out",
      again,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(again, "critical_states.json"), "utf8")).toBe(readFileSync(join(out, "critical_states.json"), "utf8"));
    const returns = (dir: string) => Object.values<any>(json(join(dir, "eval.json")).arms).map((a) => a.returns);
    expect(returns(again)).toEqual(returns(out));
  });

  it("records each critical state with its reason and shows them in the report", () => {
    const crit = json(join(out, "critical_states.json"));
    expect(crit.states.length).toBeGreaterThan(0);
    for (const s of crit.states) {
      expect(s).toMatchObject({ adviser: "rollout" });
      expect(s.action).toHaveLength(6);
      expect(s.reason).toMatch(/value estimate drops/);
      const reply = json(join(out, "identify", `episode-${String(s.episode).padStart(3, "0")}.json`));
      expect(reply.accepted.map((a: any) => a.step)).toContain(s.step);
    }
    const report = readFileSync(join(out, "report.md"), "utf8");
    expect(report).toContain("| base policy (no refinement) |");
    expect(report).toContain(
      `| rollout | ${crit.counts.proposed} | ${crit.counts.valid} | ${crit.counts.clipped} | ${crit.counts.rejected} | ${crit.counts.unverified} | ${crit.states.length} |`,
    );
    expect(report).toContain(`| ${crit.states[0].episode} | ${crit.states[0].step} |`);
  });

  it("each arm's modulation does what it should", () => {
    const stats = (dir: string) => json(join(out, dir, "progress.json")).modulation;
    expect(stats("baselines/continue_ppo").every((m: unknown) => m === null)).toBe(true);
    for (const m of stats("baselines/rice_reset")) expect(m).toMatchObject({ overridden_actions: 0, reward_added_steps: 0 });
    for (const m of stats("refined")) {
      expect(m.overridden_actions).toBe(m.matched_steps); // RA: every critical state gets its action...
      expect(m.reward_added_steps).toBe(m.matched_steps); // ...and its reward
    }
    const crit = json(join(out, "critical_states.json"));
    expect(crit.radius).toMatchObject({ match_fraction: 0.01 });
    expect(crit.radius.states).toBeGreaterThan(0);
  });

  // Hopper's short episodes end often enough in a smoke budget for resets to happen (a HalfCheetah episode is 1000 steps)
  it("on Hopper, every table is used: resets, overrides, matches the policy reached by itself; and the arms differ from continue PPO", async () => {
    const hop = join(root, "hopper");
    const r = await ultra(
      "train",
      "--env",
      "Hopper",
      "--profile",
      "smoke",
      "--seed",
      "2",
      "--adviser",
      "rollout",
      "--verify",
      "off",
      "--out",
      hop,
    );
    expect(r.code, r.stderr).toBe(0);
    const sum = (dir: string, k: string) => json(join(hop, dir, "progress.json")).modulation.reduce((n: number, m: any) => n + m[k], 0);
    for (const dir of ["refined", "baselines/rice_reset", "baselines/random_critical"]) {
      expect(sum(dir, "critical_resets"), dir).toBeGreaterThan(0);
      expect(sum(dir, "restored_start_matches"), dir).toBeGreaterThan(0);
    }
    expect(sum("refined", "overridden_actions")).toBeGreaterThan(0);
    // matches that were not the restored start: the policy reached a critical state's neighbourhood itself
    const reached = sum("refined", "matched_steps") - sum("refined", "restored_start_matches");
    expect(reached).toBeGreaterThan(0);
    const prep = json(join(hop, "refined", "progress.json")).prep_env_steps; // identify's env steps, counted for ULTRA
    expect(prep).toBeGreaterThan(0);
    expect(readFileSync(join(hop, "report.md"), "utf8")).toContain(
      `| ULTRA-RA (ultra_RA) | ${prep} | 2048 | ${prep + 2048} | ${reached} |`,
    );
    const ev = json(join(hop, "eval.json")).arms;
    for (const arm of ["ultra_RA", "rice_reset", "random_critical"]) expect(ev[arm].returns, arm).not.toEqual(ev.continue_ppo.returns);
  });

  it("--resume skips finished phases and changes nothing", async () => {
    const before = readFileSync(join(out, "eval.json"), "utf8");
    const r = await ultra("train", "--env", "HalfCheetah", "--profile", "smoke", "--seed", "1", "--out", out, "--resume");
    expect(r.code, r.stderr).toBe(0);
    for (const p of ["base", "identify", "improve", "evaluate", "report"]) expect(r.stderr).toContain(`${p}: done earlier, skipping`);
    expect(readFileSync(join(out, "eval.json"), "utf8")).toBe(before);
  });

  it("refuses to overwrite a run, and a run directory of another env", async () => {
    const again = await ultra("train", "--env", "HalfCheetah", "--profile", "smoke", "--out", out);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("already holds a run; pass --resume");
    const other = await ultra("train", "--env", "Hopper", "--profile", "smoke", "--out", out, "--resume");
    expect(other.code).toBe(1);
    expect(other.stderr).toContain("is a run of HalfCheetah-v5, not Hopper-v5");
  });

  it("a finished run's arms keep their checkpoints, and resuming them redoes nothing", async () => {
    for (const dir of ["refined", "baselines/continue_ppo"]) {
      expect(json(join(out, dir, "checkpoint", "progress.json"))).toEqual(json(join(out, dir, "progress.json")));
      expect(readFileSync(join(out, dir, "checkpoint", "model.zip")).equals(readFileSync(join(out, dir, "model.zip")))).toBe(true);
      expect(() => readFileSync(join(out, dir, "checkpoint", "resume.msgpack"))).not.toThrow();
    }
    const rec = json(join(out, "run.json"));
    for (const p of ["improve", "evaluate", "report"]) delete rec.phases[p];
    writeFileSync(join(out, "run.json"), JSON.stringify(rec));
    const before = readFileSync(join(out, "eval.json"), "utf8");
    const r = await ultra("train", "--env", "HalfCheetah", "--out", out, "--resume", "--profile", "smoke");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/improve \w+: \d+ steps from/); // every arm was complete
    expect(readFileSync(join(out, "eval.json"), "utf8")).toBe(before);
  });

  it("a corrupt critical_states.json is a clear error; base and identify survive, and --resume finishes", async () => {
    const file = join(out, "critical_states.json");
    const good = readFileSync(file, "utf8");
    writeFileSync(file, good.replace(/"step":/g, '"stepp":'));
    const bad = await ultra("improve", "--run", out);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/critical_states\.json is corrupt: .*step/s);
    writeFileSync(file, "{ not json");
    const worse = await ultra("train", "--env", "HalfCheetah", "--out", out, "--resume", "--profile", "smoke");
    expect(worse.code).toBe(1);
    expect(worse.stderr).toContain("critical_states.json is corrupt");
    const rec = json(join(out, "run.json"));
    expect(Object.keys(rec.phases)).toEqual(expect.arrayContaining(["base", "identify"]));
    expect(rec.phases.report).toBeUndefined();
    const before = readFileSync(join(out, "base", "model.zip"));
    writeFileSync(file, good);
    const r = await ultra("train", "--env", "HalfCheetah", "--out", out, "--resume", "--profile", "smoke");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("identify: done earlier, skipping");
    expect(readFileSync(join(out, "base", "model.zip")).equals(before)).toBe(true);
    expect(Object.keys(json(join(out, "run.json")).phases)).toHaveLength(5);
  });

  it("re-running identify discards the arms' checkpoints; --resume trains them again from the base policy", async () => {
    const r = await ultra("identify", "--run", out);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(out, "refined"))).toBe(false);
    const t = await ultra("train", "--env", "HalfCheetah", "--out", out, "--resume", "--profile", "smoke");
    expect(t.code, t.stderr).toBe(0);
    expect(t.stderr).toContain("improve ultra_RA: 2048 steps from the base policy");
  });

  it("identify --adviser names another adviser's critical states: chance, an LLM's control, in candidates mode", async () => {
    const copy = join(root, "chance");
    cpSync(out, copy, { recursive: true });
    const r = await ultra("identify", "--run", copy, "--adviser", "chance");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("identify: adviser rollout → chance");
    const rec = json(join(copy, "run.json"));
    expect(rec.settings.adviser).toBe("chance");
    expect(Object.keys(rec.phases)).toEqual(["base", "identify"]); // the arms trained on the rollout adviser's states are void
    expect(rec.phases.identify.result.mode).toBe("candidates");
    const crit = json(join(copy, "critical_states.json"));
    expect(crit.adviser).toBe("chance");
    for (const ep of [0, 1]) {
      const rep = json(join(copy, "identify", `episode-00${ep}.json`));
      const picks = JSON.parse(rep.reply.texts[0]).critical_states as { card: string }[];
      expect(picks.length).toBe(Math.min(rec.settings.identify.max_critical_states, rep.cards.length));
      expect(new Set(picks.map((p) => p.card)).size).toBe(picks.length);
    }
    expect(crit.states.length).toBeGreaterThan(0); // verification is off in this run: every pick is a state
    const improve = await ultra("improve", "--run", copy, "--adviser", "chance");
    expect(improve.code).toBe(1);
    expect(improve.stderr).toContain("--adviser applies to `ultra identify` only, not improve");
  });

  it("ultra control identifies a sweep's trials again with chance and compares their verification outcomes", async () => {
    const sweep = join(root, "control-sweep");
    const trial = join(sweep, "trials", "HalfCheetah-RA-s1");
    cpSync(out, trial, { recursive: true });
    const rec = json(join(trial, "run.json"));
    writeFileSync(join(trial, "run.json"), JSON.stringify({ ...rec, settings: { ...rec.settings, verify: true } })); // the control's verdicts
    const r = await ultra("control", "--from", sweep);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("control 1/1: HalfCheetah-RA-s1, identify with chance");
    const c = json(join(`${sweep}-chance`, "control.json"));
    expect(c.trials).toHaveLength(1);
    const [t] = c.trials;
    expect(t.advice).toMatchObject({ adviser: "rollout", verified: 0 }); // the sweep's run: verification off
    expect(t.control.adviser).toBe("chance");
    expect(t.control.verified).toBeGreaterThan(0);
    const verdicts = [0, 1].flatMap(
      (ep) => json(join(`${sweep}-chance`, "trials", "HalfCheetah-RA-s1", "identify", `episode-00${ep}.json`)).verification,
    );
    expect(t.control.verified).toBe(verdicts.length);
    expect(t.control.significant).toBe(verdicts.filter((v: { lower_bound: number }) => v.lower_bound > 0).length);
    expect(readFileSync(join(`${sweep}-chance`, "control.md"), "utf8")).toContain(
      `| HalfCheetah-RA-s1 | ${t.advice.proposed} / ${t.control.proposed} |`,
    );
    const again = await ultra("control", "--from", sweep); // done: nothing identified again
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).not.toContain("identify with chance");
    expect(json(join(`${sweep}-chance`, "control.json"))).toEqual(c);
  });

  it("a phase needs the phases before it", async () => {
    const rec = json(join(out, "run.json"));
    delete rec.phases.identify;
    writeFileSync(join(out, "run.json"), JSON.stringify(rec));
    const r = await ultra("improve", "--run", out);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("improve needs identify first");
  });

  it("--seeds with --base: one run per seed from the user's model, and a report with a 95% CI", async () => {
    const multi = join(root, "seeds");
    const r = await ultra(
      "train",
      "--env",
      "HalfCheetah",
      "--profile",
      "smoke",
      "--seeds",
      "0,1",
      "--adviser",
      "rollout",
      "--base",
      join(out, "base", "model.zip"),
      "--out",
      multi,
    );
    expect(r.code, r.stderr).toBe(0);
    for (const seed of [0, 1]) {
      const rec = json(join(multi, `seed-${seed}`, "run.json"));
      expect(rec.seed).toBe(seed);
      expect(rec.phases.base.result.source).toBe(join(out, "base", "model.zip"));
      expect(readFileSync(join(multi, `seed-${seed}`, "base", "model.zip")).equals(readFileSync(join(out, "base", "model.zip")))).toBe(
        true,
      );
    }
    const report = readFileSync(join(multi, "report.md"), "utf8");
    const evals = [0, 1].map((seed) => json(join(multi, `seed-${seed}`, "eval.json")).arms.ultra_RA.mean);
    const mean = (evals[0] + evals[1]) / 2;
    const half = (12.706 * Math.abs(evals[0] - evals[1])) / 2; // t(0.975, 1) · s / √2, with s = |a − b| / √2
    expect(report).toMatch(/\| ULTRA-RA \(ultra_RA\) \| [-\d.]+ ± [\d.]+ \| \[[-\d.]+, [-\d.]+\] \|/);
    const ci = report.match(/ULTRA-RA \(ultra_RA\) \| [^|]+ \| \[([-\d.]+), ([-\d.]+)\]/)!;
    expect(Number(ci[1])).toBeCloseTo(mean - half, 0);
    expect(Number(ci[2])).toBeCloseTo(mean + half, 0);
  });

  it("Pong goes through the same path", async () => {
    const pong = join(root, "pong");
    const r = await ultra("train", "--env", "Pong", "--profile", "smoke", "--adviser", "rollout", "--out", pong);
    expect(r.code, r.stderr).toBe(0);
    const ev = json(join(pong, "eval.json"));
    expect(ev.deterministic).toBe(false);
    for (const a of Object.values<any>(ev.arms)) for (const x of a.returns) expect(Math.abs(x)).toBeLessThanOrEqual(21);
    const crit = json(join(pong, "critical_states.json"));
    for (const s of crit.states) expect(Number.isInteger(s.action) && s.action >= 0 && s.action < 6).toBe(true);
  }, 600_000); // CNN training and full Pong episodes on a 2-core CPU
});

describe("a run directory that cannot take a run", () => {
  it("is refused before any training: not writable, or not enough free space", async () => {
    const root = mkdtempSync(join(tmpdir(), "ultra-nodir-"));
    writeFileSync(join(root, "file"), "");
    const t0 = Date.now();
    const r = await ultra("train", "--env", "HalfCheetah", "--profile", "smoke", "--out", join(root, "file", "run"));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`run directory ${join(root, "file", "run")} is not writable (ENOTDIR); choose another --out`);
    expect(Date.now() - t0).toBeLessThan(10_000); // no sidecar, no training
    expect(() => checkRunDir(join(root, "ok"), 1e12)).toThrow(
      /only \d+ MB free for run directory .*ok; a run needs at least 1000000000000 MB/,
    );
    expect(() => checkRunDir(join(root, "ok"))).not.toThrow();
  });
});
