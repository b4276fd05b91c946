// Runs a sweep's trials, at most max_parallel at once, each in its own sidecar actor and run dir. A trial whose
// sidecar dies (or that fails otherwise) gets a new actor and resumes from its last checkpoint; after
// max_attempts it is marked failed with its errors, and the others go on. sweep.json always says where each stands.
import { mkdirSync } from "node:fs";
import { trainRun } from "../ultra/run.js";
import { log, progressBar, withLogFile } from "../progress.js";
import { RunDir } from "../ultra/rundir.js";
import type { RayCluster } from "./cluster.js";
import type { SweepSpec, Trial } from "./spec.js";

export interface SweepState {
  spec: SweepSpec;
  created: string;
  cluster: unknown;
  trials: Trial[];
}

export class Sweep {
  readonly dir: RunDir;
  private readonly byId: Map<string, Trial>;

  constructor(
    root: string,
    readonly state: SweepState,
  ) {
    this.dir = new RunDir(root);
    this.byId = new Map(state.trials.map((t) => [t.id, t]));
  }

  save(): void {
    this.dir.writeJson("sweep.json", this.state);
  }

  runDir(t: Trial): RunDir {
    return new RunDir(this.dir.path(t.dir));
  }

  /** A trial may start once the base policy it shares is there (or its donor failed: then it pretrains its own). */
  private ready(t: Trial): boolean {
    if (t.status !== "pending") return false;
    const donor = t.donor ? this.byId.get(t.donor) : undefined;
    return !donor || donor.status === "failed" || this.baseOf(donor) !== undefined;
  }

  /** The donor's base model once its base phase is done. */
  private baseOf(donor: Trial): string | undefined {
    const run = this.runDir(donor);
    return run.exists("run.json") && run.done("base") ? run.path("base", "model.zip") : undefined;
  }

  async run(cluster: RayCluster): Promise<void> {
    const { spec, trials } = this.state;
    for (const t of trials) if (t.status !== "done") Object.assign(t, { status: "pending", attempts: 0 });
    const finished = () => trials.filter((t) => t.status === "done" || t.status === "failed").length;
    const bar = progressBar("sweep", trials.length, "trials", finished());
    const show = () =>
      bar.update(finished(), {
        running: String(trials.filter((t) => t.status === "running").length),
        failed: String(trials.filter((t) => t.status === "failed").length),
      });
    const running = new Map<string, Promise<void>>();
    this.save();
    while (trials.some((t) => t.status === "pending" || t.status === "running")) {
      // the trials that train the baselines take several times longer than the others: starting them first
      // shortens the sweep (longest first), instead of leaving one running alone at the end
      const ready = trials.filter((x) => this.ready(x)).sort((a, b) => b.baselines.length - a.baselines.length);
      for (const t of ready.slice(0, spec.max_parallel - running.size))
        running.set(
          t.id,
          this.trial(cluster, t, show).finally(() => running.delete(t.id)),
        );
      show();
      // wake when a trial ends, or every 2 s to start trials whose shared base policy has just been written
      await Promise.race([...running.values(), new Promise((r) => setTimeout(r, 2000))]);
    }
    bar.stop();
  }

  private async trial(cluster: RayCluster, t: Trial, show: () => void): Promise<void> {
    const { spec } = this.state;
    const run = this.runDir(t);
    mkdirSync(run.root, { recursive: true });
    const donor = t.donor ? this.byId.get(t.donor) : undefined;
    const agent = spec.agents?.[t.env];
    const base = agent?.model ?? (donor && donor.status !== "failed" ? this.baseOf(donor) : undefined);
    t.status = "running";
    const t0 = Date.now();
    while (t.attempts < spec.max_attempts) {
      t.attempts++;
      const name = `${t.id}-${t.attempts}-${process.pid}`;
      try {
        const { sc, place } = await cluster.sidecar(name, this.dir.root, { cpus: spec.cpus_per_trial, gpus: spec.gpus_per_trial });
        Object.assign(t, { node: place.node, endpoint: place.endpoint, pid: place.pid });
        this.save();
        log(`${t.id}: attempt ${t.attempts} on ${place.node} (pid ${place.pid}), log ${run.path("train.log")}`);
        try {
          await withLogFile(run.path("train.log"), () =>
            trainRun(
              {
                env: t.env,
                seeds: [t.seed],
                profile: spec.profile,
                variant: t.variant,
                adviser: spec.adviser,
                baselines: t.baselines,
                base,
                riceMask: agent?.mask,
                resume: true,
                llmCache: this.dir.path("llm-cache"),
              },
              t.seed,
              run.root,
              sc,
            ),
          );
          await sc.close();
        } finally {
          sc.kill();
          await cluster.kill(name);
        }
        t.status = "done";
        log(`${t.id}: done in ${Math.round((Date.now() - t0) / 1000)} s`);
        break;
      } catch (e) {
        const msg = (e as Error).message.split("\n")[0];
        t.errors.push(`attempt ${t.attempts}: ${msg}`);
        const again = t.attempts < spec.max_attempts;
        log(`${t.id}: attempt ${t.attempts} failed: ${msg}${again ? "; a new sidecar resumes it from its last checkpoint" : ""}`);
        if (!again) t.status = "failed";
      } finally {
        this.save();
        show();
      }
    }
    t.seconds = Math.round((Date.now() - t0) / 100) / 10;
    this.save();
  }
}
