// How agents/HalfCheetah was made (agents/README.md): RICE-style base, SB3 default PPO with the env config's
// normalisation, seed 0, saved every `every` steps. Run from agents/ after `make setup`: node pretrain.mjs 400000 50000 OUT
import { Sidecar } from "../dist/ts/bridge/sidecar.js";
import { resolveEnv, envSpec } from "../dist/ts/config.js";
import { learn } from "../dist/ts/learn.js";
const [steps, every] = [Number(process.argv[2]), Number(process.argv[3])];
const sc = await Sidecar.start({ heartbeatS: 0 });
const cfg = resolveEnv("HalfCheetah");
const { env } = await sc.call("env_make", { spec: envSpec(cfg, { seed: 0, training: true }) });
const { model, num_params } = await sc.call("model_new", { env, ppo: { policy: "MlpPolicy", seed: 0 } });
console.log("params", num_params);
for (let done = 0; done < steps; done += every) {
  const res = await learn(sc, model, every, "base");
  console.log(JSON.stringify({ steps: done + every, ep_rew_mean: res.ep_rew_mean }));
  await sc.call("model_save", { model, path: `${process.argv[4] ?? "/tmp/plateau"}/ckpt-${done + every}/model.zip` });
}
await sc.close();
