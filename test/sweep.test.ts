// `ultra sweep` on a real local Ray instance: sidecars as Ray actors on CURVE-secured TCP, a sidecar actor
// killed mid-trial, and the grid's report.
import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { curveKeyPair } from "zeromq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SidecarDiedError } from "../ts/bridge/errors.js";
import { RemoteSidecar } from "../ts/bridge/remote.js";
import { RayCluster } from "../ts/sweep/cluster.js";
import { resolveSweep, trialsOf } from "../ts/sweep/spec.js";
import { resolveEnv } from "../ts/config.js";
import { resolveSettings } from "../ts/ultra/settings.js";
import { processExists, readJson, ULTRA, ultraWith, waitFor } from "./helpers.js";
import { chat, closeStandIns, standIn } from "./standin.js";

/** Ray's processes on this machine: head services, agents, workers (our sidecar actors among them). */
const rayProcesses = () => {
  try {
    return execFileSync("pgrep", ["-f", "raylet|gcs_server|ray::"], { encoding: "utf8" }).trim().split("\n").filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
};

describe("the sweep grid", () => {
  it("expands envs × variants × seeds; variants share one base policy and the baselines per env and seed", async () => {
    const r = await ultraWith({}, "sweep", "--envs", "HalfCheetah,Hopper", "--variants", "RA,R", "--seeds", "0-1", "--dry-run");
    expect(r.code, r.stderr).toBe(0);
    const { trials, spec } = JSON.parse(r.stdout);
    expect(spec).toMatchObject({ ray: "local", max_parallel: 2, max_attempts: 3, profile: "paper" });
    expect(trials.map((t: { id: string }) => t.id)).toEqual([
      "HalfCheetah-RA-s0",
      "HalfCheetah-R-s0",
      "HalfCheetah-RA-s1",
      "HalfCheetah-R-s1",
      "Hopper-RA-s0",
      "Hopper-R-s0",
      "Hopper-RA-s1",
      "Hopper-R-s1",
    ]);
    expect(trials[3]).toEqual({ id: "HalfCheetah-R-s1", dir: "trials/HalfCheetah-R-s1", baselines: [], base_from: "HalfCheetah-RA-s1" });
    expect(trials[2]).toMatchObject({ baselines: ["continue_ppo", "rice_reset", "random_critical"], base_from: null });
  });

  it("reads a sweep file, flags over it", async () => {
    const r = await ultraWith({}, "sweep", "--file", "configs/sweeps/paper.yaml", "--seeds", "0", "--baselines", "none", "--dry-run");
    expect(r.code, r.stderr).toBe(0);
    const { trials, spec } = JSON.parse(r.stdout);
    expect(trials).toHaveLength(15); // 5 envs × 3 variants × 1 seed
    expect(spec).toMatchObject({ ray: "auto", baselines: [], seeds: [0] });
  });

  it("trains the opt-in rice arm only when named: by flag (all,rice) or in the sweep file", async () => {
    const grid = ["--envs", "Hopper", "--variants", "RA,R", "--dry-run"];
    const flag = await ultraWith({}, "sweep", ...grid, "--baselines", "all,rice");
    expect(flag.code, flag.stderr).toBe(0);
    const { trials } = JSON.parse(flag.stdout);
    expect(trials.map((t: { baselines: string[] }) => t.baselines)).toEqual([
      ["continue_ppo", "rice_reset", "random_critical", "rice"],
      [],
    ]);
    const file = join(mkdtempSync(join(tmpdir(), "ultra-sweep-spec-")), "rice.yaml");
    writeFileSync(file, "envs: [Hopper]\nvariants: [RA]\nbaselines: [continue_ppo, rice]\n");
    const fromFile = await ultraWith({}, "sweep", "--file", file, "--dry-run");
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect(JSON.parse(fromFile.stdout).spec.baselines).toEqual(["continue_ppo", "rice"]);
    const bad = await ultraWith({}, "sweep", ...grid, "--baselines", "rice,ricee");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('unknown baseline "ricee"');
  });

  it("starts every trial of an env from the agent the sweep names, ${VAR} expanded: make replicate's grid", () => {
    const rice = join(import.meta.dirname, "..", "..", "shared", "rice");
    const old = process.env.RICE;
    try {
      process.env.RICE = rice;
      const spec = resolveSweep("configs/sweeps/replicate-dense.yaml", {});
      expect(spec.agents?.["Hopper-v4"]).toEqual({
        model: join(rice, "hopper/near_optimal/model/best_model.zip"),
        mask: join(rice, "hopper/near_optimal/masknet/best_model.zip"),
      });
      const trials = trialsOf(spec);
      expect(trials).toHaveLength(2 * 3 * 3);
      expect(trials.every((t) => t.donor === null)).toBe(true); // no trial waits for another's base policy
      expect(trials.filter((t) => t.baselines.length).map((t) => t.id)).toEqual([
        "HalfCheetah-RA-s0",
        "HalfCheetah-RA-s1",
        "HalfCheetah-RA-s2",
        "Hopper-RA-s0",
        "Hopper-RA-s1",
        "Hopper-RA-s2",
      ]);
      const file = join(mkdtempSync(join(tmpdir(), "ultra-sweep-agents-")), "agents.yaml");
      const grid = "envs: [Hopper-v4]\nvariants: [RA]\n";
      writeFileSync(file, `${grid}agents: { Hopper-v4: { model: "\${RICE}/hopper/nothing.zip" } }\n`);
      expect(() => resolveSweep(file, {})).toThrow(/agents.Hopper-v4.model: .*hopper\/nothing.zip does not exist/);
      writeFileSync(file, `${grid}agents: { Hopper: { model: "\${RICE}/hopper/near_optimal/model/best_model.zip" } }\n`);
      expect(() => resolveSweep(file, {})).toThrow(/agents names Hopper, not among the sweep's envs \(Hopper-v4\)/);
      delete process.env.RICE;
      expect(() => resolveSweep("configs/sweeps/replicate-dense.yaml", {})).toThrow(/\$\{RICE\} is not set: set RICE/);
    } finally {
      if (old === undefined) delete process.env.RICE;
      else process.env.RICE = old;
    }
  });

  it("resolves every committed sweep file with its profile for each of its envs: a typo fails here, not in a grid", () => {
    const vars = {
      RICE: join(import.meta.dirname, "..", "..", "shared", "rice"),
      PONG_BASE: mkdtempSync(join(tmpdir(), "ultra-pong-base-")),
    };
    writeFileSync(join(vars.PONG_BASE, "model.zip"), ""); // make replicate pretrains it before the Pong part
    const old = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
    try {
      Object.assign(process.env, vars);
      const files = readdirSync("configs/sweeps").filter((f) => f.endsWith(".yaml"));
      expect(files).toEqual(expect.arrayContaining(["replicate-dense.yaml", "replicate-pong.yaml", "ablation-radius.yaml"]));
      for (const f of files) {
        const spec = resolveSweep(join("configs/sweeps", f), {});
        for (const env of spec.envs)
          expect(() => resolveSettings({ profile: spec.profile, envOverrides: resolveEnv(env).ultra }), `${f}: ${env}`).not.toThrow();
      }
    } finally {
      for (const [k, v] of Object.entries(old))
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
    }
  });

  it("refuses a grid it cannot run, saying what to fix", async () => {
    const cases: [string[], RegExp][] = [
      [["--variants", "RA"], /name the grid: --envs and --variants/],
      [["--envs", "HalfCheeta", "--variants", "RA"], /HalfCheeta/],
      [["--envs", "Hopper", "--variants", "RAA"], /variants/],
      [["--envs", "Hopper", "--variants", "RA", "--ray", "http://head:8265"], /local, auto or ray:\/\/HOST:PORT\s+→ at ray/],
      [["--envs", "Hopper", "--variants", "RA", "--file", "/nonexistent.yaml"], /cannot read sweep file \/nonexistent.yaml/],
    ];
    for (const [args, why] of cases) {
      const r = await ultraWith({}, "sweep", ...args, "--dry-run");
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stderr).toMatch(why);
    }
  });
});

describe("sidecar actors on Ray, CURVE", () => {
  let cluster: RayCluster;
  let sc: RemoteSidecar;
  let endpoint: string;
  beforeAll(async () => {
    cluster = await RayCluster.start("local", { heartbeatS: 0 });
    const started = await cluster.sidecar("curve-test", tmpdir(), { cpus: 1, gpus: 0 });
    sc = started.sc;
    endpoint = started.place.endpoint;
  });
  afterAll(async () => {
    await sc?.close();
    await cluster?.close();
  });

  it("serves the protocol on loopback tcp to the client holding the sweep's keys", async () => {
    expect(endpoint).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    expect(sc.info.pid).not.toBe(process.pid);
    expect((await sc.call("echo", { payload: { a: [1, 2] } })).payload).toEqual({ a: [1, 2] });
  });

  it("refuses actor arguments it cannot use, naming them", async () => {
    const keys = { server_public: "x".repeat(40), server_secret: "y".repeat(40), client_public: "z".repeat(40) };
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ name: "curve-test", curve: keys, shared_dir: tmpdir() }, /actor name must be a new non-empty string, got 'curve-test'/],
      [
        { name: "a", curve: { ...keys, client_public: "short" }, shared_dir: tmpdir() },
        /curve must hold server_public, server_secret and client_public as 40-character z85 keys/,
      ],
      [{ name: "b", curve: keys, shared_dir: 7 }, /shared_dir must be a path, got 7/],
      [{ name: "c", curve: keys, shared_dir: tmpdir(), cpus: -1 }, /cpus and gpus must be non-negative numbers, got -1, 0/],
    ];
    for (const [args, why] of cases) await expect(cluster.local.call("actor_start", args as never)).rejects.toThrow(why);
    // a directory the actor's node cannot write: the actor refuses to start, naming it
    await expect(cluster.sidecar("unwritable", "/nonexistent-sweep", { cpus: 1, gpus: 0 })).rejects.toThrow(
      /\/nonexistent-sweep is not writable on node .*: a sweep directory must be on a filesystem every Ray node mounts/,
    );
  });

  it("refuses a client with the wrong client key, the wrong server key, or no CURVE at all", async () => {
    const good = cluster.clientCurve;
    const other = curveKeyPair();
    await expect(RemoteSidecar.connect(endpoint, { ...good, publicKey: other.publicKey, secretKey: other.secretKey })).rejects.toThrow(
      /refused our CURVE client key/,
    );
    await expect(RemoteSidecar.connect(endpoint, { ...good, serverPublic: other.publicKey })).rejects.toThrow(SidecarDiedError);
    // a plain DEALER (no keys): the handshake never completes, so no request is ever answered
    const { Dealer } = await import("zeromq");
    const plain = new Dealer({ linger: 0, receiveTimeout: 2000 });
    plain.connect(endpoint);
    await plain.send("not even msgpack");
    await expect(plain.receive()).rejects.toThrow();
    plain.close();
    expect((await sc.call("ping", {})).time).toBeGreaterThan(0); // the trial's own connection is untouched
  });
});

describe("ultra sweep", () => {
  const out = join(mkdtempSync(join(tmpdir(), "ultra-sweep-")), "sweep");
  let code: number | null;
  let killed: { id: string; pid: number } | undefined;

  beforeAll(async () => {
    const args = [
      "sweep",
      "--envs",
      "HalfCheetah,Reacher",
      "--variants",
      "RA,R",
      "--seeds",
      "0-1",
      "--baselines",
      "none",
      "--profile",
      "quick",
      "--adviser",
      "rollout",
      "--max-parallel",
      "2",
      "--out",
      out,
    ];
    const child = spawn(process.execPath, [ULTRA, ...args], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.on("exit", r));
    // kill the sidecar actor of the first trial that is in improve (its identify is done), mid-trial
    await waitFor(() => {
      if (!existsSync(join(out, "sweep.json"))) return false;
      for (const t of readJson(join(out, "sweep.json")).trials) {
        const run = join(out, t.dir, "run.json");
        if (t.status === "running" && t.pid && existsSync(run) && readJson(run).phases.identify && !readJson(run).phases.improve) {
          killed = { id: t.id, pid: t.pid };
          process.kill(t.pid, "SIGKILL");
          return true;
        }
      }
      return false;
    }, 600_000);
    code = await exited;
    if (code !== 0) console.error(stderr);
  }, 1_500_000);

  it("kills one sidecar actor mid-trial, and that trial resumes on a new actor and completes", () => {
    expect(killed).toBeDefined();
    expect(code).toBe(0);
    const trials = readJson(join(out, "sweep.json")).trials;
    expect(trials).toHaveLength(8);
    expect(trials.map((t: { status: string }) => t.status)).toEqual(Array(8).fill("done"));
    const t = trials.find((x: { id: string }) => x.id === killed!.id);
    expect(t.attempts).toBe(2);
    expect(t.errors[0]).toMatch(/attempt 1: remote sidecar at tcp:\/\/127\.0\.0\.1:\d+ disconnected/);
    expect(t.pid).not.toBe(killed!.pid);
    expect(processExists(killed!.pid)).toBe(false);
    const run = readJson(join(out, t.dir, "run.json"));
    // the full budget (PPO rounds it up to whole rollouts), as much as an uninterrupted trial of the grid did
    const steps = run.phases.improve.result[`ultra_${t.variant}`].steps;
    expect(steps).toBeGreaterThanOrEqual(run.settings.improve.steps);
    const sibling = trials.find(
      (x: { id: string; env: string; variant: string }) => x.id !== t.id && x.env === t.env && x.variant === t.variant,
    );
    expect(readJson(join(out, sibling.dir, "run.json")).phases.improve.result[`ultra_${t.variant}`].steps).toBe(steps);
    expect(Object.keys(readJson(join(out, t.dir, "eval.json")).arms)).toEqual(["base", `ultra_${t.variant}`]);
  });

  it("pretrains one base policy per env and seed: the other variant starts from it", () => {
    const run = readJson(join(out, "trials", "Reacher-R-s1", "run.json"));
    expect(run.phases.base.result.source).toBe(join(out, "trials", "Reacher-RA-s1", "base", "model.zip"));
    expect(readJson(join(out, "trials", "Reacher-RA-s1", "run.json")).phases.base.result.source).toBe("pretrained");
  });

  it("writes one report: every arm of every env over 2 seeds with a CI, curves, adviser statistics, trials", () => {
    const report = readFileSync(join(out, "report.md"), "utf8");
    for (const env of ["HalfCheetah-v5", "Reacher-v5"]) expect(report).toContain(`## ${env}`);
    const rows = report.split("\n").filter((l) => /^\| (base policy|ULTRA-R).* ± /.test(l));
    expect(rows).toHaveLength(6); // base, RA, R per env
    for (const row of rows) expect(row).toMatch(/^\| [^|]+ \| 2 \| -?[\d.]+ ± [\d.]+ \| \[-?[\d.]+, -?[\d.]+\] \| -?[\d.]+, -?[\d.]+ \|$/);
    expect(report).toMatch(/Adviser over 4 runs: \d+ critical states proposed/);
    // why suggestions failed verification, counted from every run's identify/episode-NNN.json verdicts
    const verdicts = ["RA", "R"].flatMap((v) =>
      [0, 1].flatMap((s) => {
        const dir = join(out, "trials", `HalfCheetah-${v}-s${s}`, "identify");
        return readdirSync(dir)
          .filter((f) => /^episode-\d+\.json$/.test(f))
          .flatMap((f) => readJson(join(dir, f)).verification as { accepted: boolean; lower_bound: number; mean_gain: number }[]);
      }),
    );
    expect(verdicts.length).toBeGreaterThan(0);
    const adviser = readJson(join(out, "summary.json"))["HalfCheetah-v5"].adviser;
    expect(adviser.significant_below_bar).toBe(verdicts.filter((v) => !v.accepted && v.lower_bound > 0).length);
    const gains = verdicts.map((v) => v.mean_gain).sort((a, b) => a - b);
    const mid = gains.length / 2;
    expect(adviser.median_gain).toBeCloseTo(gains.length % 2 ? gains[Math.floor(mid)] : (gains[mid - 1] + gains[mid]) / 2, 9);
    expect(report).toMatch(
      /failed verification \(\d+ of them with a gain significantly above 0 but below the min_effect bar; median gain -?[\d.]+ against a median bar of [\d.]+\)/,
    );
    // env steps per arm: identification's (the ULTRA arms use it) plus training; and the training's wall time
    const costs = report.split("\n").flatMap((l) => l.match(/^\| ULTRA-RA? \(ultra_RA?\) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \|$/) ?? []);
    expect(costs.length).toBe(4 * 5); // RA, R per env: match + 4 groups
    for (let i = 0; i < costs.length; i += 5) {
      const [prep, train, total, seconds] = costs.slice(i + 1, i + 5).map(Number);
      expect(prep).toBeGreaterThan(0);
      expect(total).toBe(prep + train);
      expect(seconds).toBeGreaterThan(0);
    }
    expect(report).toMatch(/Published, for comparison \(RICE, ICML 2024, Table 1: .*\): no refine -5\.79 ± 0\.73/); // Reacher
    const summary = readJson(join(out, "summary.json"));
    const ra = summary["Reacher-v5"].arms.find((a: { arm: string }) => a.arm === "ultra_RA");
    const perSeed = [0, 1].map((s) => readJson(join(out, "trials", `Reacher-RA-s${s}`, "eval.json")).arms.ultra_RA.mean);
    expect(ra.returns).toEqual(perSeed);
    for (const env of ["HalfCheetah", "Reacher"]) expect(existsSync(join(out, `curves-${env}.png`))).toBe(true);
  });

  it("--report-only writes the same report and summary again from the stored sweep, without Ray or training", async () => {
    const before = ["report.md", "summary.json"].map((f) => readFileSync(join(out, f), "utf8"));
    for (const f of ["report.md", "summary.json"]) rmSync(join(out, f));
    const r = await ultraWith({}, "sweep", "--out", out, "--report-only");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/starting Ray/);
    expect(["report.md", "summary.json"].map((f) => readFileSync(join(out, f), "utf8"))).toEqual(before);
  });

  it("leaves no Ray process behind", async () => {
    expect(await waitFor(() => rayProcesses().length === 0, 20_000)).toBe(true);
  });
});

describe("ultra sweep, stopped and resumed", () => {
  it("SIGTERM ends Ray and every sidecar within 5 s; --resume finishes the grid, keeping finished trials", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "ultra-sweep-stop-")), "sweep");
    const args = [
      "sweep",
      "--envs",
      "HalfCheetah",
      "--variants",
      "RA",
      "--seeds",
      "0-2",
      "--baselines",
      "none",
      "--profile",
      "smoke",
      "--adviser",
      "rollout",
      "--max-parallel",
      "1",
      "--out",
      out,
    ];
    const child = spawn(process.execPath, [ULTRA, ...args], { stdio: "ignore" });
    const exited = new Promise<number | null>((r) => child.on("exit", (code, signal) => r(code ?? (signal ? 128 : null))));
    const first = () => existsSync(join(out, "sweep.json")) && readJson(join(out, "sweep.json")).trials[0].status === "done";
    expect(await waitFor(first, 300_000)).toBe(true);
    child.kill("SIGTERM");
    const t0 = Date.now();
    expect(await exited).toBe(143);
    expect(await waitFor(() => rayProcesses().length === 0, 5000)).toBe(true);
    expect(Date.now() - t0).toBeLessThan(5000);
    // an existing sweep is never overwritten, and --resume keeps its grid
    const again = await ultraWith({}, "sweep", "--envs", "HalfCheetah", "--variants", "RA", "--out", out);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`${out} already holds a sweep; pass --resume to continue it, or choose another --out`);
    const other = await ultraWith({}, "sweep", "--out", out, "--resume", "--seeds", "0-5");
    expect(other.code).toBe(1);
    expect(other.stderr).toContain("--resume continues the grid stored in");
    const r = await ultraWith({}, "sweep", "--out", out, "--resume");
    expect(r.code, r.stderr).toBe(0);
    const trials = readJson(join(out, "sweep.json")).trials;
    expect(trials.map((t: { status: string }) => t.status)).toEqual(["done", "done", "done"]);
    expect(r.stderr).not.toMatch(/HalfCheetah-RA-s0: attempt/); // finished before the stop: not run again
  }, 600_000);
});

describe("ultra sweep, a trial that keeps failing", () => {
  it("is tried max-attempts times, then marked failed with its errors in sweep.json and the report; exit 1", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "ultra-sweep-fail-")), "sweep");
    // an adviser that cannot work: identify fails the same way on every attempt
    const args = [
      "sweep",
      "--envs",
      "Reacher",
      "--variants",
      "RA",
      "--seeds",
      "0",
      "--baselines",
      "none",
      "--profile",
      "smoke",
      "--adviser",
      "replay:/nonexistent",
      "--out",
      out,
    ];
    const r = await ultraWith({}, ...args);
    expect(r.code).toBe(1);
    const [t] = readJson(join(out, "sweep.json")).trials;
    expect(t).toMatchObject({ status: "failed", attempts: 3 });
    expect(t.errors).toHaveLength(3);
    for (const e of t.errors) expect(e).toMatch(/^attempt \d: .*nonexistent.* has no LLM replies to replay/);
    expect(readJson(join(out, t.dir, "run.json")).phases.base).toBeDefined(); // attempts 2 and 3 resumed after base
    expect(readFileSync(join(out, "report.md"), "utf8")).toMatch(/\| Reacher-RA-s0 \| failed \| 3 \| .* has no LLM replies to replay/);
  }, 600_000);
});

describe("ultra sweep with an LLM adviser", () => {
  afterAll(closeStandIns);

  it("pays once per distinct prompt across trials (a shared reply cache), each run keeping its own replies", async () => {
    const reply = JSON.stringify({ critical_states: [{ step: 5, reason: "the arm overshoots", action: [0.5, -0.5], reward: 0.1 }] });
    const server = await standIn(() => ({ ...chat(reply), delayMs: 500 }), 100);
    const out = join(mkdtempSync(join(tmpdir(), "ultra-sweep-llm-")), "sweep");
    const args = [
      "sweep",
      "--envs",
      "Reacher",
      "--variants",
      "RA,A",
      "--seeds",
      "0",
      "--baselines",
      "none",
      "--profile",
      "smoke",
      "--adviser",
      "openai:stand-in",
      "--out",
      out,
    ];
    const r = await ultraWith({ OPENAI_BASE_URL: server.url }, ...args);
    expect(r.code, r.stderr).toBe(0);
    // both variants roll out the same base policy with the same seed: the same 2 prompts, asked once
    expect(server.seen).toHaveLength(2);
    expect(readdirSync(join(out, "llm-cache"))).toHaveLength(2);
    const usage = (v: string) => readJson(join(out, "trials", `Reacher-${v}-s0`, "run.json")).phases.identify.result.usage;
    expect(usage("RA").prompt_tokens + usage("A").prompt_tokens).toBe(200); // the stand-in bills 100 per call
    for (const v of ["RA", "A"]) {
      expect(readdirSync(join(out, "trials", `Reacher-${v}-s0`, "identify", "cache"))).toHaveLength(2); // replayable alone
      expect(readJson(join(out, "trials", `Reacher-${v}-s0`, "critical_states.json")).adviser).toBe("openai:stand-in");
    }
  }, 600_000);
});
