// The TS bridge against a real Python sidecar over real ZeroMQ.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProtocolVersionError, SidecarDiedError, SidecarError, SidecarTimeoutError } from "../ts/bridge/errors.js";
import type { Sidecar } from "../ts/bridge/sidecar.js";
import type { TrajectoryChunk } from "../ts/bridge/ops.js";
import { ROOT } from "../ts/paths.js";
import { NDArray, VERSION, pack } from "../ts/protocol.js";
import { HALF_CHEETAH, PONG, TINY_PPO, processExists, startSidecar, waitFor } from "./helpers.js";

describe("sidecar bridge", () => {
  let sc: Sidecar;
  beforeAll(async () => {
    sc = await startSidecar();
  });
  afterAll(async () => {
    await sc.close();
  });

  it("handshakes with versions, and the ipc endpoint sits in a private dir", async () => {
    expect(sc.info.protocol).toBe(VERSION);
    expect(sc.info.versions["stable-baselines3"]).toMatch(/^2\./);
    expect(sc.endpoint).toMatch(/^ipc:\/\/.*ultra-.*\/sidecar\.sock$/);
    const { statSync } = await import("node:fs");
    const dir = dirname(sc.endpoint.slice("ipc://".length));
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it("a garbage frame gets an error and the sidecar keeps serving", async () => {
    await sc.sendRaw(Buffer.from([0xc1, 0x00, 0xff]));
    await sc.sendRaw(...pack({ v: VERSION, id: "nope", op: "ping", args: {} }));
    await waitFor(() => sc.unroutedErrors.length >= 2, 5000);
    expect(sc.unroutedErrors.map((e) => (e as SidecarError).code)).toEqual(["bad_frame", "bad_frame"]);
    expect((await sc.call("ping", {})).time).toBeGreaterThan(0);
  });

  it("unknown env id is a SidecarError naming it", async () => {
    const err = await sc.call("env_make", { spec: { env_id: "HalfCheeta-v5" } }).catch((e) => e);
    expect(err).toBeInstanceOf(SidecarError);
    expect(err.code).toBe("env_error");
    expect(err.message).toContain("unknown environment id 'HalfCheeta-v5'");
  });

  it("a Python exception carries its traceback", async () => {
    const { env } = await sc.call("env_make", { spec: { env_id: "CartPole-v1" } });
    const err = await sc.call("env_step", { env, actions: NDArray.float32([]) }).catch((e) => e);
    expect(err).toBeInstanceOf(SidecarError);
    expect(err.message).toMatch(/leading dimension 0, the env has 1 sub-envs/);
  });

  for (const [name, spec] of [
    ["HalfCheetah", { ...HALF_CHEETAH, n_envs: 2 }],
    ["Pong", PONG],
  ] as const) {
    it(`snapshot/restore gives identical next observations on ${name}`, async () => {
      const { env, action_space, n_envs } = await sc.call("env_make", { spec });
      await sc.call("env_reset", { env });
      const actions = Array.from({ length: 40 }, (_, t) =>
        action_space.type === "Box"
          ? NDArray.float32(
              Array.from({ length: n_envs * action_space.shape[0] }, (_, i) => Math.sin(t * 0.7 + i)),
              [n_envs, action_space.shape[0]],
            )
          : new NDArray(
              "int64",
              [n_envs],
              BigInt64Array.from({ length: n_envs }, (_, i) => BigInt((t + i) % action_space.n!)),
            ),
      );
      const play = async (acts: NDArray[]) => {
        const out: Buffer[] = [];
        for (const a of acts) {
          const r = await sc.call("env_step", { env, actions: a });
          out.push(Buffer.from(r.obs.data.buffer, r.obs.data.byteOffset, r.obs.data.byteLength));
        }
        return out;
      };
      await play(actions.slice(0, 15));
      const snaps = await Promise.all([...Array(n_envs).keys()].map((index) => sc.call("env_snapshot", { env, index })));
      const first = await play(actions.slice(15));
      await play(actions.slice(0, 7)); // drift away
      for (const [index, s] of snaps.entries()) await sc.call("env_restore", { env, index, snapshot: s.snapshot });
      const second = await play(actions.slice(15));
      expect(second.length).toBe(25);
      second.forEach((o, t) => expect(o.equals(first[t]), `step ${t}`).toBe(true));
      await sc.call("close", { handle: env });
    });
  }

  it("streams ≥ 10k trajectory steps intact as typed arrays", async () => {
    const { env } = await sc.call("env_make", { spec: { ...HALF_CHEETAH, normalize: { gamma: 0.98 } } });
    const { model } = await sc.call("model_new", { env, ppo: TINY_PPO });
    const chunks: TrajectoryChunk[] = [];
    const res = await sc.call(
      "collect",
      { model, env, episodes: 10, chunk_steps: 512, snapshot_every: 50 },
      { onEvent: (ev, d) => ev === "chunk" && chunks.push(d) },
    );
    expect(res.steps).toBe(10_000);
    for (let ep = 0; ep < 10; ep++) {
      const mine = chunks.filter((c) => c.episode === ep);
      expect(mine.map((c) => c.start)).toEqual([0, 512]);
      const rewards = mine.flatMap((c) => Array.from(c.rewards.data));
      expect(rewards.length).toBe(1000);
      const sum = rewards.reduce((a, b) => a + b, 0);
      expect(sum).toBeCloseTo(res.episodes[ep].return, 1);
      for (const c of mine) {
        expect(c.obs.data).toBeInstanceOf(Float32Array);
        expect(c.obs.shape).toEqual([c.rewards.size, 17]);
        expect(c.actions.shape).toEqual([c.rewards.size, 6]);
        expect(c.log_probs.data.every(Number.isFinite)).toBe(true);
      }
      expect(mine.reduce((n, c) => n + c.snapshots.length, 0)).toBe(20);
      expect(mine.at(-1)!.dones.data.at(-1)).toBe(1);
    }
  });
});

describe("sidecar lifecycle", () => {
  it("a wrong protocol version is a clear error", async () => {
    const err = await startSidecar({ protocolVersion: VERSION + 41 }).catch((e) => e);
    expect(err).toBeInstanceOf(ProtocolVersionError);
    expect(err.message).toContain(`v${VERSION + 41}`);
    expect(err.message).toContain(`v${VERSION}`);
  });

  it("works over tcp on 127.0.0.1", async () => {
    const sc = await startSidecar({ transport: "tcp" });
    expect(sc.endpoint).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    expect((await sc.call("echo", { payload: { a: [1, 2] } })).payload).toEqual({ a: [1, 2] });
    await sc.close();
  });

  it("a killed sidecar fails the pending request with SidecarDiedError, leaves no process and no socket dir", async () => {
    const sc = await startSidecar();
    const pid = sc.proc.pid!;
    const dir = dirname(sc.endpoint.slice("ipc://".length));
    const { env } = await sc.call("env_make", { spec: HALF_CHEETAH });
    const { model } = await sc.call("model_new", { env, ppo: TINY_PPO });
    const learning = sc.call("model_learn", { model, steps: 1_000_000 }, { timeoutS: 30 });
    setTimeout(() => process.kill(pid, "SIGKILL"), 1500);
    const t0 = Date.now();
    const err = await learning.catch((e) => e);
    expect(err).toBeInstanceOf(SidecarDiedError);
    expect(err.message).toMatch(/died: exit code null, signal SIGKILL/);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(processExists(pid)).toBe(false);
    await expect(sc.call("ping", {})).rejects.toBeInstanceOf(SidecarDiedError);
    sc.kill();
    expect(existsSync(dir)).toBe(false);
  });

  it("a hung sidecar times out with SidecarTimeoutError", async () => {
    const sc = await startSidecar();
    process.kill(sc.proc.pid!, "SIGSTOP");
    const err = await sc.call("ping", {}, { timeoutS: 1 }).catch((e) => e);
    expect(err).toBeInstanceOf(SidecarTimeoutError);
    sc.kill();
    await waitFor(() => !processExists(sc.proc.pid!), 5000);
    expect(processExists(sc.proc.pid!)).toBe(false);
  });

  it("the sidecar dies with its parent, even when the parent is SIGKILLed", async () => {
    const parent = spawn(process.execPath, [join(ROOT, "test", "fixtures", "parent.mjs")], { stdio: ["ignore", "pipe", "inherit"] });
    const line = await new Promise<string>((resolve) => parent.stdout!.once("data", (d) => resolve(String(d))));
    const { sidecar } = JSON.parse(line);
    expect(processExists(sidecar)).toBe(true);
    parent.kill("SIGKILL");
    expect(await waitFor(() => !processExists(sidecar), 5000)).toBe(true);
  });
});
