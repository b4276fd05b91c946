"""probability_of_improvement: rliable's statistic, its stratified bootstrap, and the op's errors, over a real sidecar."""

import numpy as np
import pytest
from conftest import SidecarError
from rliable import metrics

from ultra_sidecar.aggregate import improvement, probability_of_improvement


def test_the_fast_statistic_is_rliables_on_ties_and_unequal_run_counts():
    rng = np.random.default_rng(0)
    for _ in range(200):
        nx, ny, tasks = rng.integers(1, 6, size=3)
        x = rng.integers(0, 4, size=(nx, tasks)).astype(float)  # few values: many ties, some identical columns
        y = rng.integers(0, 4, size=(ny, tasks)).astype(float)
        assert improvement(x, y) == pytest.approx(metrics.probability_of_improvement(x, y), abs=1e-12)


def test_an_arm_that_beats_another_on_every_run_has_p_1_and_a_ci_that_stays_above_one_half(sidecar):
    scores = {
        "ultra_RA": [[2100.0, 3700.0], [2110.0, 3710.0], [2120.0, 3720.0]],
        "continue_ppo": [[2000.0, 3600.0], [2010.0, 3610.0], [2020.0, 3620.0]],
    }
    pairs = [["ultra_RA", "continue_ppo"], ["continue_ppo", "ultra_RA"]]
    out = sidecar.call("probability_of_improvement", scores=scores, pairs=pairs, reps=500, seed=0)["pairs"]
    up, down = out["ultra_RA>continue_ppo"], out["continue_ppo>ultra_RA"]
    assert up["p"] == 1.0 and up["ci"] == [1.0, 1.0] and [t["p"] for t in up["tasks"]] == [1.0, 1.0]
    assert down["p"] == 0.0 and down["ci"] == [0.0, 0.0]


def test_overlapping_arms_get_a_ci_around_their_estimate_reproducible_for_a_seed(sidecar):
    scores = {"a": [[3.0, 10.0], [4.0, 11.0], [5.0, 12.0]], "b": [[1.0, 10.0], [2.0, 11.0], [3.0, 12.0]]}
    call = lambda seed: sidecar.call("probability_of_improvement", scores=scores, pairs=[["a", "b"]], reps=500, seed=seed)
    r = call(0)["pairs"]["a>b"]
    # task 0: 8 of 9 pairs won, one tie: (8 + 0.5) / 9; task 1: identical columns, 1/2; averaged over tasks
    assert r["tasks"][0]["p"] == pytest.approx(8.5 / 9) and r["tasks"][1]["p"] == 0.5
    assert r["p"] == pytest.approx((8.5 / 9 + 0.5) / 2)
    lo, hi = r["ci"]
    assert 0.0 <= lo < r["p"] < hi <= 1.0
    assert call(0)["pairs"] == call(0)["pairs"]
    assert call(1)["pairs"]["a>b"]["p"] == r["p"]  # the seed moves the bootstrap, not the estimate


def test_the_bootstrap_leaves_numpys_global_rng_where_it_was():
    # rliable draws from it; a sidecar that also trains PPO must draw as it would have without the report
    np.random.seed(5)
    expected = np.random.rand(3)
    np.random.seed(5)
    probability_of_improvement({"a": [[1.0], [2.0]], "b": [[0.0], [3.0]]}, [["a", "b"]], 100, 0)
    assert np.array_equal(np.random.rand(3), expected)


@pytest.mark.parametrize(
    "scores,pairs,message",
    [
        ({"a": [[1.0, 2.0]], "b": [[1.0]]}, [["a", "b"]], "with the same tasks for every arm; got a (1, 2), b (1, 1)"),
        ({"a": [1.0, 2.0], "b": [[1.0]]}, [["a", "b"]], "scores must be runs × tasks matrices"),
        ({"a": [[1.0]], "b": [[1.0]]}, [["a", "rice"]], "pair [a, rice] names an arm that has no scores (arms: a, b)"),
        ({"a": [["x"]], "b": [[1.0]]}, [["a", "b"]], "scores must map each arm to a runs × tasks matrix of numbers"),
    ],
)
def test_bad_scores_are_named(sidecar, scores, pairs, message):
    with pytest.raises(SidecarError) as e:
        sidecar.call("probability_of_improvement", scores=scores, pairs=pairs, reps=100, seed=0)
    assert e.value.code == "bad_args" and message in e.value.message
