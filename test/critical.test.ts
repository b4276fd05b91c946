// What identify accepts from an adviser: proposals are validated against the episode and the action space.
import { describe, expect, it } from "vitest";
import type { SpaceInfo } from "../ts/bridge/ops.js";
import { emptyCounts, validateAdvice } from "../ts/ultra/critical.js";
import type { Episode } from "../ts/ultra/episodes.js";

const episode = { episode: 3, length: 100 } as Episode;
const box: SpaceInfo = { type: "Box", shape: [2], low: [-1, -1], high: [1, 1] };
const discrete: SpaceInfo = { type: "Discrete", shape: [], n: 6 };

describe("validateAdvice", () => {
  it("accepts valid proposals and clips out-of-range continuous actions, counting them", () => {
    const counts = emptyCounts();
    const out = validateAdvice(
      [
        { step: 5, reason: "falls", action: [0.5, -0.5], reward: 0.3 },
        { step: 9, reason: "too hard", action: [3, -0.2], reward: 1 },
      ],
      episode,
      box,
      "test",
      counts,
    );
    expect(out).toEqual([
      { episode: 3, step: 5, action: [0.5, -0.5], reward: 0.3, reason: "falls", adviser: "test" },
      { episode: 3, step: 9, action: [1, -0.2], reward: 1, reason: "too hard", adviser: "test" },
    ]);
    expect(counts).toMatchObject({ proposed: 2, valid: 2, clipped: 1, rejected: 0 });
  });

  it("rejects steps that do not exist, repeats, wrong shapes, bad discrete actions and garbage, by reason", () => {
    const counts = emptyCounts();
    const out = validateAdvice(
      [
        { step: 100, action: [0, 0], reward: 0 },
        { step: -1, action: [0, 0], reward: 0 },
        { step: 4, action: [0, 0], reward: 0 },
        { step: 4, action: [1, 1], reward: 0 },
        { step: 6, action: [0, 0, 0], reward: 0 },
        { step: 7, action: [0, Number.NaN], reward: 0 },
        "critical at 12",
        { step: 2.5, action: [0, 0], reward: 0 },
      ],
      episode,
      box,
      "test",
      counts,
    );
    expect(out.map((s) => s.step)).toEqual([4]);
    expect(counts.rejections).toEqual({
      "step does not exist in the episode": 2,
      "step named twice": 1,
      "action is not 2 finite numbers": 1,
      "not a {step, reason, action, reward} object": 3, // NaN fails the schema already
    });
    expect(counts).toMatchObject({ proposed: 8, valid: 1, rejected: 7 });
    const d = emptyCounts();
    expect(
      validateAdvice(
        [
          { step: 1, action: 6, reward: 0 },
          { step: 2, action: 2, reward: 0 },
          { step: 3, action: null, reward: -1 },
        ],
        episode,
        discrete,
        "t",
        d,
      ).map((s) => s.action),
    ).toEqual([2, null]);
    expect(d.rejections).toEqual({ "action not in 0..5": 1 });
  });
});
