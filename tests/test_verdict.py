"""The sequential paired rule, and the seed lottery on simulated nights (it must not win)."""

from __future__ import annotations

import math
import random

from harness import verdict
from harness.results import COLUMNS
from harness.verdict import DISCARD, KEEP, decide, sigma_floor


def test_clearly_worse_first_seed_is_discarded_at_once():
    d = decide([0.2], sigma=0.1)
    assert d.action == DISCARD and d.k == 1
    assert decide([0.1], sigma=0.1).action == "continue"  # 0.1 < sqrt(2) * 0.1


def test_never_keep_before_three_seeds_even_when_much_better():
    assert decide([-0.5], 0.1).action == "continue"
    assert decide([-0.5, -0.5], 0.1).action == "continue"
    assert decide([-0.5, -0.5, -0.5], 0.1).action == KEEP


def test_keep_needs_the_margin_over_its_own_uncertainty():
    se = math.sqrt(2) * 0.1 / math.sqrt(3)
    just_enough = -verdict.KEEP_FACTOR * se - 1e-9
    assert decide([just_enough] * 3, 0.1).action == KEEP
    assert decide([just_enough * 0.9] * 3, 0.1).action == "continue"
    # a large spread of paired differences raises the SE above the floor
    spread = [-0.6, 0.1, -0.1]
    assert decide(spread, 0.1).action != KEEP


def test_not_better_or_out_of_seeds_is_discarded():
    assert decide([0.01, -0.01, 0.02], 0.1).action == DISCARD
    assert decide([-0.05] * 5, 0.1).action == DISCARD
    assert decide([-0.05] * 4, 0.1).action == "continue"


def test_sigma_floor_prior_below_three_seeds_and_shrunk_above():
    assert sigma_floor([0.3, 0.2]) == verdict.PRIOR_SIGMA
    tiny = sigma_floor([0.30, 0.301, 0.302])
    assert verdict.PRIOR_SIGMA * 0.8 < tiny < verdict.PRIOR_SIGMA  # three lucky seeds cannot make keeps cheap
    many = sigma_floor([0.3 + 0.01 * (i % 2) for i in range(60)])
    assert many < 0.05  # with many seeds the measurement dominates


def _night(rng: random.Random, gain: float, sd: float = 0.1) -> tuple[bool, int]:
    """One experiment: incumbent measured on 3 floor seeds, candidate = incumbent - gain + seed noise."""
    inc = [rng.gauss(0.25, sd) for _ in range(verdict.MAX_SEEDS)]
    known = inc[:3]
    diffs = []
    for k in range(verdict.MAX_SEEDS):
        diffs.append(rng.gauss(0.25 - gain, sd) - inc[k])
        d = decide(diffs, sigma_floor(known))
        if d.final:
            return d.action == KEEP, k + 1
    raise AssertionError("the rule must decide by MAX_SEEDS")


def test_seed_lottery_cannot_win():
    """A train.py identical to the incumbent but for a random draw, over 20,000 simulated experiments."""
    rng = random.Random(12345)
    n = 20_000
    outcomes = [_night(rng, gain=0.0) for _ in range(n)]
    false_keep = sum(k for k, _ in outcomes) / n
    mean_seeds = sum(s for _, s in outcomes) / n
    print(f"false-keep rate {false_keep:.4%} over {n} null experiments, {mean_seeds:.2f} seeds each")
    assert false_keep < 0.005
    # per simulated night of 30 experiments, a false keep is rare
    nights = [any(k for k, _ in outcomes[i:i + 30]) for i in range(0, n, 30)]
    assert sum(nights) / len(nights) < 0.15


def test_real_improvements_are_kept_sometimes_and_worse_never():
    rng = random.Random(7)
    big = sum(_night(rng, gain=0.25)[0] for _ in range(2000)) / 2000
    worse = sum(_night(rng, gain=-0.1)[0] for _ in range(2000)) / 2000
    print(f"keep rate: 0.25 better {big:.1%}, 0.1 worse {worse:.2%}")
    assert big > 0.5
    assert worse < 0.001


def _row(commit, status, scores, **over):
    r = {c: "" for c in COLUMNS}
    r.update(commit=commit, status=status, seed_scores=scores, backend="mujoco", budget_s="300", harness="ok")
    r.update(over)
    return r


def test_noise_floor_from_rows():
    rows = [
        _row("aaaaaaa", "baseline", "1:0.3000"),
        _row("bbbbbbb", "discard", "1:0.1000;2:0.1000;3:0.1000"),
        _row("aaaaaaa", "floor", "2:0.2000;3:0.4000;4:crash"),
        _row("aaaaaaa", "floor", "5:0.9000", harness="modified"),
        _row("aaaaaaa", "floor", "6:0.9000", budget_s="20"),
    ]
    assert verdict.incumbent_scores(rows, "aaaaaaa", "mujoco", 300.0) == {1: 0.3, 2: 0.2, 3: 0.4}
    assert math.isclose(verdict.noise_floor(rows, "aaaaaaa"), 0.1)
    assert verdict.noise_floor(rows[:1], "aaaaaaa") is None
