"""The sequential paired rule, and the seed lottery on simulated nights (it must not win)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from harness import verdict
from harness.results import COLUMNS
from harness.verdict import DISCARD, KEEP, decide


INC = [0.110, 0.100, 0.120, 0.105, 0.115, 0.110]   # an incumbent floor at today's level (sd 0.0071)


def test_clearly_worse_first_seed_is_discarded_at_once():
    sd, _ = verdict.pair_sd([0.05], INC)
    assert decide([sd + 0.001], INC).action == DISCARD
    assert decide([sd - 0.001], INC).action == "continue"


def test_never_keep_before_three_seeds_even_when_much_better():
    assert decide([-0.05], INC).action == "continue"
    assert decide([-0.05, -0.05], INC).action == "continue"
    assert decide([-0.05, -0.05, -0.05], INC).action == KEEP


def test_keep_needs_the_t_margin_over_its_own_uncertainty():
    diffs = [-0.02, -0.02, -0.02]
    sd, dof = verdict.pair_sd(diffs, INC)
    assert dof == 5 + 2
    t = verdict.t_quantile(1 - verdict.keep_alpha(len(INC)), dof)
    needed = t * sd / math.sqrt(3)
    assert decide([-needed - 1e-6] * 3, INC).action == KEEP
    assert decide([-needed * 0.95] * 3, INC).action == "continue"
    # a large spread of paired differences raises the SE
    assert decide([-0.10, 0.02, -0.01], INC).action != KEEP


def test_fewer_incumbent_seeds_make_keeps_harder():
    diffs = [-0.045, -0.05, -0.04]
    assert decide(diffs, INC).action == KEEP
    assert decide(diffs, INC[:1]).action == "continue"  # dof 2: the t quantile is far wider


def test_keeps_are_stricter_until_the_incumbent_has_every_seed():
    """No floor run is needed to start: against an incumbent on fewer than MAX_SEEDS seeds a keep needs the
    stricter level, since its spread is known from fewer runs."""
    full = INC + [0.110, 0.110]
    assert len(full) == verdict.MAX_SEEDS and verdict.keep_alpha(len(full)) == verdict.KEEP_ALPHA
    assert verdict.keep_alpha(len(full) - 1) == verdict.KEEP_ALPHA_FEW < verdict.KEEP_ALPHA
    diffs = [-0.033, -0.034, -0.035]
    sd, dof = verdict.pair_sd(diffs, full)
    margin = 0.034 / (sd / math.sqrt(3))
    assert verdict.t_quantile(1 - verdict.KEEP_ALPHA, dof) < margin < verdict.t_quantile(1 - verdict.KEEP_ALPHA_FEW, dof)
    assert decide(diffs, full).action == KEEP
    assert decide(diffs, full[:-1]).action == "continue"   # one seed short: not yet a keep


def test_t_quantile_matches_tables():
    # Student-t one-sided quantiles from standard tables
    for p, dof, exact in [(0.99, 1, 31.821), (0.995, 2, 9.925), (0.995, 4, 4.604), (0.99, 5, 3.365),
                          (0.995, 7, 3.499), (0.999, 10, 4.144), (0.975, 30, 2.042)]:
        assert abs(verdict.t_quantile(p, dof) - exact) / exact < 0.02, (p, dof)
    assert verdict.t_quantile(0.99, 0) == math.inf


def test_not_better_or_out_of_seeds_is_discarded():
    assert decide([0.001, -0.001, 0.002], INC).action == DISCARD
    assert decide([-0.002] * verdict.MAX_SEEDS, INC).action == DISCARD
    assert decide([-0.002] * (verdict.MAX_SEEDS - 1), INC).action == "continue"


def test_floor_follows_the_incumbent_score():
    """The sd assumed is relative: the same spread pattern at a 3x higher score is a 3x wider floor."""
    low = verdict.sigma_floor([0.100, 0.1001, 0.1002])
    high = verdict.sigma_floor([0.300, 0.3003, 0.3006])
    assert math.isclose(low, verdict.MIN_REL_SD * 0.1001, rel_tol=1e-6)
    assert math.isclose(high / low, 3.0, rel_tol=1e-3)
    assert verdict.sigma_floor([0.1, 0.2, 0.3]) == pytest.approx(0.1)   # measured above the floor: measured


def test_held_out_worse_only_beyond_its_noise():
    assert verdict.held_out_worse([0.15, 0.16, 0.14], 0.15, 5) is None
    why = verdict.held_out_worse([0.20, 0.21, 0.19], 0.15, 5)
    assert why and why.startswith("held-out clearly worse")
    assert verdict.held_out_worse([0.20, 0.21, 0.19], 0.15, 0) is None   # nothing to compare with


# --- simulated nights under the measured noise model ------------------------------------------------


def _noise_module():
    spec = importlib.util.spec_from_file_location("noise", Path(__file__).resolve().parents[1] / "benchmarks" / "noise.py")
    noise = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(noise)
    return noise


noise = _noise_module()
_keep_rate = noise.simulate   # simulated nights: (keep rate, seeds per verdict, waves per verdict, re-runs)
SECONDS_PER_SEED = 300.0 + noise.SEED_OVERHEAD_S   # training + start-up + scoring, as measured on 2 cores


def measured_noise() -> tuple[float, float, float]:
    """(mean vel_err, seed sd, repeat sd) of the 300 s runs in benchmarks/noise_runs.tsv scored on today's
    panel, as `benchmarks/noise.py --summary` prints them."""
    n = noise.noise_model()
    assert n["seeds"] >= 5 and n["repeat_dof"] >= 2, f"benchmarks/noise_runs.tsv has too few runs on this panel: {n}"
    return n["level"], n["seed_sd"], n["repeat_sd"]


@pytest.mark.parametrize("floor_seeds", [verdict.MAX_SEEDS, 1])
def test_simulated_nights_meet_the_error_rates(floor_seeds):
    """The issue's table: null <= 1 %, 20 % better >= 50 %, and a null stays about 1 % at 3x the noise, with the
    incumbent measured on all 8 seeds up front (evaluate.py floor) or on the baseline's seed only (no floor: a
    verdict runs the incumbent on each seed it lacks). At 3x the noise the true rate is about 1.0 % either way
    (60,000 nights: 1.03 % with the floor, 1.01 % without), so the bound leaves room for 20,000 nights'
    sampling error (0.07 %) and still fails a rule that lets 1.6 % through."""
    level, seed_sd, rep_sd = measured_noise()
    seed_rel, rep_rel = seed_sd / level, rep_sd / level
    print(f"\nnoise model from benchmarks/noise_runs.tsv: vel_err {level:.4f}, seed sd {seed_sd:.4f}, repeat sd {rep_sd:.4f}; "
          f"the incumbent on {floor_seeds} seed(s) up front")
    print(f"{'case':<40}{'kept':>8}{'seeds/verdict':>15}{'re-runs':>9}{'verdicts/h':>12}")
    cases = [
        ("identical train.py", 1, 0.0, True, 0.01),
        ("equal but different code", 1, 0.0, False, 0.01),
        ("20 % better", 1, 0.2, False, None),
        ("identical train.py, 3x noise", 3, 0.0, True, 0.0125),
        ("equal but different code, 3x noise", 3, 0.0, False, 0.0125),
        ("20 % better, 3x noise", 3, 0.2, False, None),
    ]
    for i, (name, scale, gain, same, at_most) in enumerate(cases):
        rate, seeds, _, reruns = _keep_rate(20_000 if at_most else 4_000, 100 + i, level=level, seed_rel=scale * seed_rel,
                                            rep_rel=scale * rep_rel, gain=gain, same_code=same, floor_seeds=floor_seeds)
        print(f"{name:<40}{rate:>8.2%}{seeds:>15.2f}{reruns:>9.2f}{3600 / (seeds * SECONDS_PER_SEED):>12.2f}")
        if at_most is not None:
            assert rate <= at_most, name
        elif scale == 1:
            assert rate >= 0.5, name


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


def test_repeats_average_and_a_drop_mark_forgets_earlier_scores():
    rows = [
        _row("aaaaaaa", "baseline", "1:0.3000", held_out="0.4000", seeds="1"),
        _row("aaaaaaa", "floor", "1:0.1000;2:0.2000"),
        _row("aaaaaaa", "floor", "2:dropped"),
        _row("aaaaaaa", "floor", "2:0.5000"),
    ]
    assert verdict.incumbent_scores(rows, "aaaaaaa", "mujoco", 300.0) == pytest.approx({1: 0.2, 2: 0.5})
    assert verdict.incumbent_held_out(rows, "aaaaaaa", "mujoco", 300.0) == (0.4, 1)
    assert verdict.incumbent_held_out(rows, "bbbbbbb", "mujoco", 300.0) is None


@pytest.mark.parametrize("wave", [2, 3, 4])
def test_simulated_nights_in_waves_keep_the_error_rates(wave):
    """Seeds run `wave` at once (slots), the rule looking after each wave: the same error rates as one at a
    time, and a verdict in fewer rounds of runs (the README's slots table)."""
    level, seed_sd, rep_sd = measured_noise()
    seed_rel, rep_rel = seed_sd / level, rep_sd / level
    print(f"\nwaves of {wave}: {'case':<34}{'kept':>8}{'seeds/verdict':>15}{'waves/verdict':>15}")
    for i, (name, scale, gain, at_most) in enumerate([("equal but different code", 1, 0.0, 0.01),
                                                      ("equal but different code, 3x noise", 3, 0.0, 0.01),
                                                      ("20 % better", 1, 0.2, None)]):
        rate, seeds, waves, _ = _keep_rate(10_000 if at_most else 4_000, 200 + 10 * wave + i, level=level,
                                        seed_rel=scale * seed_rel, rep_rel=scale * rep_rel, gain=gain,
                                        same_code=False, wave=wave)
        print(f"{'':<14}{name:<34}{rate:>8.2%}{seeds:>15.2f}{waves:>15.2f}")
        if at_most is not None:
            assert rate <= at_most, name
        else:
            assert rate >= 0.5, name
            one_at_a_time = _keep_rate(4_000, 200 + 10 * wave + i, level=level, seed_rel=seed_rel, rep_rel=rep_rel,
                                       gain=gain, same_code=False)[1]
            assert waves <= one_at_a_time / 1.5, "a verdict must take far fewer rounds of runs than seeds"

