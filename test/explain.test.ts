// `ultra explain --run DIR`: a mask net for a run's base policy, trained with RICE's recipe (the run's rice.mask_steps
// and rice.alpha: the smoke profile's 2048 steps here) or loaded with --mask, recorded in DIR/explain/; and when the
// rice arm may take it instead of training its own (the same recipe, seed and base policy only).
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunContext } from "../ts/ultra/context.js";
import { currentExplanation, reusableMask } from "../ts/ultra/explain.js";
import { fmt } from "../ts/progress.js";
import { RunDir } from "../ts/ultra/rundir.js";
import { resolveSettings, type Settings } from "../ts/ultra/settings.js";
import { readJson, startSidecar, TINY_PPO, ultra } from "./helpers.js";

describe("ultra explain", () => {
  const root = mkdtempSync(join(tmpdir(), "ultra-explain-"));
  const run = new RunDir(join(root, "run"));
  const settings = resolveSettings({ profile: "smoke" });
  const ctxWith = (s: Settings) => ({ run, settings: s, seed: 0 }) as unknown as RunContext;

  beforeAll(async () => {
    // a run whose base phase has finished: an (untrained) CartPole policy and run.json
    const sc = await startSidecar();
    try {
      const { env } = await sc.call("env_make", { spec: { env_id: "CartPole-v1", n_envs: 1, seed: 0 } });
      const { model } = await sc.call("model_new", { env, ppo: TINY_PPO });
      await sc.call("model_save", { model, path: run.path("base", "model.zip") });
    } finally {
      await sc.close();
    }
    run.writeJson("run.json", {
      env: "CartPole-v1",
      env_id: "CartPole-v1",
      seed: 0,
      profile: "smoke",
      settings,
      created: "",
      git_commit: null,
      versions: {},
      phases: {},
    });
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("trains a mask net with the run's recipe, recording its env steps and wall time; the rice arm may reuse it", async () => {
    const r = await ultra("explain", "--run", run.root);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/mask net: 2048\/2048 steps/); // the progress bar's last line
    const ex = JSON.parse(r.stdout);
    expect(ex).toMatchObject({
      mask: "explain/masknet.zip",
      loaded_from: null,
      recipe: { steps: 2048, alpha: 0.01, seed: 0 },
      env_steps: 2048,
    });
    expect(ex.seconds).toBeGreaterThan(0);
    expect(ex.trained.blind_fraction).toBeGreaterThanOrEqual(0);
    expect(readJson(run.path("explain", "explain.json"))).toEqual(ex);
    expect(existsSync(run.path("explain", "masknet.zip"))).toBe(true);

    expect(reusableMask(ctxWith(settings))).toEqual({ path: run.path("explain", "masknet.zip"), trained: ex.trained });
    expect(reusableMask(ctxWith({ ...settings, rice: { ...settings.rice, mask_steps: 4096 } }))).toBeNull(); // another recipe
  });

  it("loads a given mask net (checked against the base policy's env) and records no training", async () => {
    const given = join(root, "given.zip");
    copyFileSync(run.path("explain", "masknet.zip"), given);
    const r = await ultra("explain", "--run", run.root, "--mask", given);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      mask: "explain/masknet.zip",
      loaded_from: given,
      recipe: null,
      trained: null,
      env_steps: 0,
    });
    expect(reusableMask(ctxWith(settings))).toBeNull(); // not trained with the arm's recipe
  });

  it("drops an explanation once the base policy changes", () => {
    writeFileSync(run.path("base", "model.zip"), "another policy");
    const cur = currentExplanation(run);
    expect(cur.explanation).toBeNull();
    expect("why" in cur && cur.why).toMatch(/another base policy/);
  });

  it("refuses what it cannot use, saying what to do, before any sidecar starts", async () => {
    const cases: [string[], string][] = [
      [["--run", root], "is not a run directory"],
      [["--run", run.root, "--mask", join(root, "nope.zip")], `--mask ${join(root, "nope.zip")} does not exist`],
      [["--run", run.root, "--mask", join(root, "given.zip"), "--steps", "100"], "pass one of them"],
    ];
    for (const [args, why] of cases) {
      const r = await ultra("explain", ...args);
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stderr).toContain(why);
    }
  });
});

describe("the rice arm in a run", () => {
  it("trains its mask net, restarts at its critical states with the RND bonus, and the report sets its cost beside identification's", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "ultra-rice-arm-")), "run");
    const r = await ultra(
      "train",
      "--env",
      "CartPole-v1",
      "--profile",
      "smoke",
      "--adviser",
      "rollout",
      "--verify",
      "off",
      "--baselines",
      "continue_ppo,rice,rice_random",
      "--out",
      out,
    );
    expect(r.code, r.stderr).toBe(0);
    const p = readJson(join(out, "baselines", "rice", "progress.json"));
    expect(p.mask.trained).toMatchObject({ steps: 2048 });
    const m = p.modulation.reduce(
      (a: Record<string, number>, s: Record<string, number>) => Object.fromEntries(Object.keys(s).map((k) => [k, (a[k] ?? 0) + s[k]])),
      {},
    );
    expect(m.rice_resets).toBeGreaterThan(0); // CartPole episodes end inside the smoke budget: some restart at the mask net's state
    expect(m.rnd_bonus_steps).toBe(p.steps_done);
    const crit = readJson(join(out, "critical_states.json"));
    const identSteps = crit.env_steps.collect + crit.env_steps.adviser + crit.env_steps.verify;
    const report = readFileSync(join(out, "report.md"), "utf8");
    expect(report).toContain(`RICE: a mask net trained here for 2048 steps`);
    const ratio = fmt(2048 / identSteps).replace(".", "\\.");
    expect(report).toMatch(
      new RegExp(
        `Finding critical states: ULTRA's identification took ${identSteps} env steps and [\\d.]+ s; RICE's mask net took 2048 env steps and [\\d.]+ s to train: ${ratio}× ULTRA's env steps`,
      ),
    );
    expect(readJson(join(out, "eval.json")).arms.rice.returns).not.toEqual(readJson(join(out, "eval.json")).arms.continue_ppo.returns);
    // RICE's ablation: random states of the fresh rollouts, no mask net, the same RND
    const rr = readJson(join(out, "baselines", "rice_random", "progress.json"));
    expect(rr.prep_env_steps).toBe(0);
    expect(rr.modulation.reduce((n: number, s: { rice_resets: number }) => n + s.rice_resets, 0)).toBeGreaterThan(0);
    expect(report).toContain("RICE, random critical states: random critical states (RICE's ablation: no mask net)");
  }, 400_000);
});
