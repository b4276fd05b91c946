// A custom adviser for ULTRA's identification phase: `ultra train --adviser module:examples/custom-adviser/adviser.mjs`.
// The Adviser interface (ts/ultra/advisers/types.ts): a name, and advise(episode, query, ctx) → the episode's critical
// states as {step, reason, action, reward}. This one needs no LLM: in an episode the env ended early (a fall, a
// dropped pole), the critical state is a few steps before the end, and the suggestion is to do the opposite of
// what the policy did there. Identify then checks each suggestion like any adviser's (verification: it is kept only
// if it beats the policy's own action from that state's snapshot).

/** @param {{ identify: { max_critical_states: number } }} settings */
export default function makeAdviser(settings) {
  const lookbacks = [3, 6, 9, 12].slice(0, settings.identify.max_critical_states);
  return {
    name: "before-the-end",
    /**
     * @param {import("../../ts/ultra/episodes.js").Episode} ep
     * @param {unknown} _query the LLM prompt for this episode (unused: no LLM here)
     * @param {import("../../ts/ultra/advisers/types.js").AdviceContext} ctx
     */
    async advise(ep, _query, ctx) {
      const advice = [];
      if (ep.terminated) {
        for (const back of lookbacks) {
          const step = ep.length - 1 - back;
          if (step < 0) break;
          const space = ctx.actionSpace;
          // Discrete(2) (CartPole): the other action; Box: the taken action mirrored, inside the bounds
          const action =
            space.type === "Discrete"
              ? (Number(ep.actions.data[step]) + 1) % space.n
              : Array.from(ep.actions.row(step), (a, j) => Math.min(space.high[j], Math.max(space.low[j], -a)));
          advice.push({
            step,
            reason: `${back} steps before the episode ended early: try the opposite of what the policy did`,
            action,
            reward: 0.5,
          });
        }
      }
      return { request: { episode: ep.episode, terminated: ep.terminated, length: ep.length }, reply: advice, advice };
    },
  };
}
