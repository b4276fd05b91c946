"""Results across seeds and tasks, the field's standard (Agarwal et al. 2021, "Deep RL at the Edge of the Statistical
Precipice"; rliable): the probability that one arm's run beats another's, per task and averaged over tasks, with
stratified bootstrap CIs. It needs no normalisation across tasks, and it answers the report's question directly:
does a refinement arm beat continue PPO (or RICE)? The paired t of ts/ultra/stats.ts stays beside it: it uses the
pairing by seed, this does not."""

import numpy as np

from .protocol import ProtocolError


def probability_of_improvement(scores: dict, pairs: list, reps: int, seed: int) -> dict:
    """scores: arm -> runs × tasks returns (every arm the same tasks, in the same order); pairs: [x, y] arm names.
    Returns, per "x>y": P(X > Y) averaged over tasks, its 95% stratified bootstrap CI, and per task the same."""
    try:
        mats = {arm: np.asarray(m, dtype=np.float64) for arm, m in scores.items()}
    except (TypeError, ValueError) as e:
        raise ProtocolError("bad_args", f"scores must map each arm to a runs × tasks matrix of numbers: {e}") from None
    if (
        any(m.ndim != 2 or m.shape[0] < 1 or m.shape[1] < 1 for m in mats.values())
        or len({m.shape[1] for m in mats.values()}) > 1
    ):
        shapes = ", ".join(f"{arm} {m.shape}" for arm, m in mats.items())
        raise ProtocolError(
            "bad_args", f"scores must be runs × tasks matrices with the same tasks for every arm; got {shapes}"
        )
    out = {}
    for x, y in pairs:
        if x not in mats or y not in mats:
            raise ProtocolError("bad_args", f"pair [{x}, {y}] names an arm that has no scores (arms: {', '.join(mats)})")
        per_task = []
        for t in range(mats[x].shape[1]):
            per_task.append(_interval(mats[x][:, [t]], mats[y][:, [t]], reps, seed))
        out[f"{x}>{y}"] = {**_interval(mats[x], mats[y], reps, seed), "tasks": per_task}
    return out


def improvement(sx: np.ndarray, sy: np.ndarray) -> float:
    """rliable's metrics.probability_of_improvement (Mann-Whitney U / (n_x n_y), averaged over tasks: P(X > Y) + ½ P(X = Y)),
    without a scipy call per task: the bootstrap evaluates it thousands of times (py/tests/test_aggregate.py checks
    that the two agree)."""
    diff = sx[:, None, :] - sy[None, :, :]
    return float(np.mean((diff > 0) + 0.5 * (diff == 0)))


def _interval(sx: np.ndarray, sy: np.ndarray, reps: int, seed: int) -> dict:
    from rliable import library as rly  # here, not at import: it brings pandas, scipy and arch into every sidecar's start

    # rliable's stratified bootstrap draws its indices from numpy's global RNG (its random_state reaches only arch's
    # unused one): seed that per estimate, so the same scores give the same CI whichever pairs are asked for, and
    # put it back, so a sidecar that also trains PPO draws as it would have.
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        points, cis = rly.get_interval_estimates({"p": (sx, sy)}, improvement, reps=reps)
    finally:
        np.random.set_state(state)
    lo, hi = np.ravel(cis["p"])
    return {"p": float(points["p"]), "ci": [float(lo), float(hi)]}
