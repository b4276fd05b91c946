// How the committed agents were made (agents/README.md): RICE-style base, SB3 default PPO with the env config's
// normalisation, seed 0, saved every `every` steps. After `make setup` and `npm run build`:
//   node agents/pretrain.mjs ENV STEPS EVERY OUT      e.g. node agents/pretrain.mjs HalfCheetah 400000 50000 /tmp/plateau
import { Sidecar } from "../dist/ts/bridge/sidecar.js";
import { resolveEnv, envSpec } from "../dist/ts/config.js";
import { learn } from "../dist/ts/learn.js";

const [envName, steps, every, out] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4]), process.argv[5]];
if (!envName || !(steps > 0) || !(every > 0) || !out) {
  console.error("usage: node agents/pretrain.mjs ENV STEPS EVERY OUT (e.g. HalfCheetah 400000 50000 /tmp/plateau)");
  process.exit(2);
}
const sc = await Sidecar.start({ heartbeatS: 0 });
const cfg = resolveEnv(envName);
const { env } = await sc.call("env_make", { spec: envSpec(cfg, { seed: 0, training: true }) });
const { model, num_params } = await sc.call("model_new", { env, ppo: { policy: "MlpPolicy", seed: 0 } });
console.log(JSON.stringify({ env: cfg.env_id, params: num_params }));
for (let done = 0; done < steps; done += every) {
  const res = await learn(sc, model, every, "base");
  console.log(JSON.stringify({ steps: done + every, ep_rew_mean: res.ep_rew_mean }));
  await sc.call("model_save", { model, path: `${out}/ckpt-${done + every}/model.zip` });
}
await sc.close();
