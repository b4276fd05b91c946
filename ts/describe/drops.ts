// Candidate critical states: where the critic's value estimate drops most from one step to the next.
// Shared by the rollout adviser (which picks them) and the episode summaries (which show them to an LLM).

export interface ValueDropPick {
  step: number;
  drop: number;
}

/** The k largest drops V(t) − V(t+1) above `floor` (> 0) among steps lo..hi, at least `minSeparation` apart,
 * most severe first (ties: earlier step first). */
export function largestDrops(
  values: ArrayLike<number>,
  opts: { k: number; minSeparation: number; lo?: number; hi?: number; floor?: number },
): ValueDropPick[] {
  const { k, minSeparation, lo = 0, hi = values.length - 2, floor = 0 } = opts;
  const cands: ValueDropPick[] = [];
  for (let t = lo; t <= Math.min(hi, values.length - 2); t++) {
    const drop = values[t] - values[t + 1];
    if (drop > 0 && drop >= floor) cands.push({ step: t, drop });
  }
  cands.sort((a, b) => b.drop - a.drop || a.step - b.step);
  const picked: ValueDropPick[] = [];
  for (const c of cands) {
    if (picked.length >= k) break;
    if (picked.every((p) => Math.abs(p.step - c.step) >= minSeparation)) picked.push(c);
  }
  return picked;
}

/** Where the decline ending in the drop at `step` began: the step of the highest V in the `window` steps up to it
 * (the last state from which the agent still expected more; the latest one on ties). The critic reports a fall
 * when it is under way; the actions that could have prevented it come before (docs/results.md, fidelity on Hopper). */
export function dropOnset(values: ArrayLike<number>, step: number, window: number): number {
  let best = step;
  for (let t = step; t >= Math.max(0, step - window); t--) if (values[t] > values[best]) best = t;
  return best;
}
