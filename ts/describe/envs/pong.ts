// Pong (ALE/Pong-v5 behind AtariWrapper): the agent sees 84x84 grey frames, which no text can summarise, so
// the interpreter reads the ALE RAM (128 bytes) when the caller has it. Addresses (AtariARI, Anand et al. 2019;
// re-checked against ale_py 0.12 by moving the paddle and scoring points):
//   RAM[51] player (right, green) paddle y   RAM[50] opponent (left) paddle y   RAM[49] ball x   RAM[54] ball y
//   RAM[14] player score                      RAM[13] opponent score
// y grows downward; the player's paddle spans y 38 (top) to 203 (bottom). Measured against the frames:
// paddle centre ~ RAM[51] - 5.5 px and ball centre ~ RAM[54] - 12.5 px, so the ball is level with the paddle
// centre when RAM[54] - RAM[51] = 7; the paddle is 16 px tall. The ball meets the player's paddle at x ~ 188
// and rests at x 205 after the player misses, at x 52 after the opponent misses; y = 0 while it is not drawn.
import { UltraError } from "../../errors.js";
import type { StateInterpreter } from "./types.js";

export const RAM = { player_y: 51, opponent_y: 50, ball_x: 49, ball_y: 54, player_score: 14, opponent_score: 13 } as const;
const CENTRE_OFFSET = 7; // RAM[54] - RAM[51] when the ball is level with the paddle centre
const PLAYER_FACE_X = 188;
const HALF_PADDLE = 8;

export const ACTIONS = ["NOOP", "FIRE", "RIGHT", "LEFT", "RIGHTFIRE", "LEFTFIRE"] as const;
const MEANING = [
  "stay",
  "stay (FIRE does not move the paddle)",
  "move paddle up",
  "move paddle down",
  "move paddle up",
  "move paddle down",
];

export const pong: StateInterpreter = {
  name: "Pong",
  features(_obs, ram) {
    if (!ram) return {};
    if (ram.length !== 128) throw new UltraError(`Pong: expected 128 bytes of ALE RAM, got ${ram.length}`);
    const f: Record<string, number> = {};
    for (const [k, addr] of Object.entries(RAM)) f[k] = ram[addr];
    const visible = f.ball_y > 0 && f.ball_x > 0;
    f.ball_visible = visible ? 1 : 0;
    // NaN, not 0, when there is no ball: summaries skip non-finite values instead of averaging fake alignments
    f.ball_offset = visible ? f.ball_y - f.player_y - CENTRE_OFFSET : NaN;
    f.ball_gap = Math.abs(f.ball_offset);
    f.ball_distance_x = visible ? PLAYER_FACE_X - f.ball_x : NaN;
    return f;
  },
  describe(obs, ram) {
    if (!ram) return "only image frames are available for this state (no RAM was recorded), so paddle and ball positions are unknown";
    const f = this.features(obs, ram);
    const score = `score: you ${f.player_score}, opponent ${f.opponent_score}`;
    const paddles = `your paddle (right) y ${f.player_y}, opponent paddle (left) y ${f.opponent_y}`;
    if (!f.ball_visible) return `${score}; ball not in play; ${paddles} (RAM units, y grows downward, your paddle ranges 38-203)`;
    const vertical =
      Math.abs(f.ball_offset) < 1
        ? "level with its centre"
        : `${Math.abs(f.ball_offset)} px ${f.ball_offset > 0 ? "below" : "above"} its centre`;
    const reach = Math.abs(f.ball_offset) <= HALF_PADDLE + 1 ? "in line with the paddle" : "not in line with the paddle";
    const where =
      f.ball_x >= 195
        ? "the ball is already past your paddle"
        : f.ball_x <= 60
          ? "the ball is past the opponent's paddle"
          : `the ball is ${f.ball_distance_x} px left of your paddle's face, ${vertical} (${reach})`;
    return `${score}; ball at x ${f.ball_x}, y ${f.ball_y}: ${where}; ${paddles} (RAM units, y grows downward)`;
  },
  brief(obs, ram) {
    return this.describe(obs, ram);
  },
  actionNames: ACTIONS,
  actionSemantics:
    "6 discrete actions: 0 NOOP (stay), 1 FIRE (stay), 2 RIGHT (move paddle up), 3 LEFT (move paddle down), 4 RIGHTFIRE (up), 5 LEFTFIRE (down)",
  describeAction(action) {
    const a = typeof action === "number" ? action : Number(action[0]);
    if (!Number.isInteger(a) || a < 0 || a >= ACTIONS.length)
      throw new UltraError(`Pong: action ${a} is not one of 0..${ACTIONS.length - 1}`);
    return `${a} ${ACTIONS[a]} (${MEANING[a]})`;
  },
  keyFeatures: [
    { name: "ball_gap", label: "|ball - paddle centre| while the ball is in play", unit: "px", digits: 1 },
    { name: "player_y", label: "your paddle y", digits: 1 },
    { name: "player_score", label: "your score", digits: 0, summary: "last" },
    { name: "opponent_score", label: "opponent score", digits: 0, summary: "last" },
  ],
};
