// Command-line values shared by train and sweep: baseline sets and integer lists.
import { UltraError } from "./errors.js";
import { BASELINES, OPT_IN_BASELINES, type Baseline } from "./ultra/settings.js";

/** `--baselines` of train and sweep: names, `all` (BASELINES, the default set: no opt-in arm) and `none`, e.g.
 * "all,rice" adds the opt-in RICE arm to the default set. */
export function parseBaselines(s: string): Baseline[] {
  const known: readonly string[] = [...BASELINES, ...OPT_IN_BASELINES];
  const names = s
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean)
    .flatMap((x) => (x === "all" ? [...BASELINES] : x === "none" ? [] : [x]));
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length)
    throw new UltraError(
      `unknown baseline ${unknown.map((n) => `"${n}"`).join(", ")} in --baselines ${s}: use all, none or names among ${known.join(", ")} (e.g. all,rice)`,
    );
  return [...new Set(names)] as Baseline[];
}

/** "0,1,2" or "0-4" (or both, "0-2,7"): distinct non-negative integers; `what` names the option in errors. */
export const parseIntList = (s: string, what = "seeds"): number[] => {
  const seeds = s.split(",").flatMap((part) => {
    const m = part.trim().match(/^(\d+)(?:-(\d+))?$/);
    if (!m) throw new UltraError(`bad ${what} "${s}": use e.g. 0,1,2 or 0-4`);
    const [a, b] = [Number(m[1]), Number(m[2] ?? m[1])];
    return Array.from({ length: b - a + 1 }, (_, i) => a + i);
  });
  return [...new Set(seeds)];
};
