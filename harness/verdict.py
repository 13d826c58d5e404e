"""The keep/discard rule: a sequential, paired comparison on harness-chosen seeds.

Pure functions only, so the rule is easy to read and to test: the seed-by-seed decision
(decide), the noise floor, the held-out check, and the status an experiment ends with.

The noise model, measured (benchmarks/noise.py, data in benchmarks/noise_runs.tsv, README "Noise"):
one run's vel_err is the commit's mean plus seed noise plus same-seed repeat noise (0.014 and 0.008
at vel_err 0.126), and the spread grows with the score (it was about 0.1 at vel_err 0.3). So the
noise floor follows the incumbent: the sd the rule assumes is never below MIN_REL_SD x its mean.

Candidate and incumbent are trained on the same seeds and compared seed by seed
(d_k = candidate_k - incumbent_k, negative = better; incumbent_k = the mean of its clean runs on k).
The sd of one pair is estimated by pooling the incumbent's seed-to-seed spread (n seeds; a pair
holds two runs, so its variance counts twice) with the sample spread of the d's:
  var_d = (2 * (n - 1) * s_inc^2 + (k - 1) * s_d^2) / dof,   dof = (n - 1) + (k - 1),
  sd_d = max(sqrt(var_d), sqrt(2) * MIN_REL_SD * mean(incumbent)).
The rule:
  after seed 1:  discard at once if d_1 > sd_d (clearly worse);
  from seed 3:   keep    if -mean(d) >= t(dof, 1 - alpha) * sd_d / sqrt(k)
                 discard if mean(d) >= 0
  at MAX_SEEDS:  discard (not shown better);
  otherwise:     add a seed.
With slots (harness.slots), seeds come in waves of w run at once and the rule looks only after each
wave: at k = w, 2w, ... (the last wave stops at MAX_SEEDS); the first look's early discard compares
mean(d) with sd_d when w < 3. Its looks are a subset of the one-at-a-time rule's, so its false keeps
are not more frequent (the simulated nights check it for w = 1 to 4).
The t quantile pays for an sd estimated from few runs, so a night whose noise is several times
the measured one is still safe; the floor keeps a lucky low estimate from making keeps cheap.
alpha is KEEP_ALPHA against an incumbent scored on all MAX_SEEDS seeds, and the stricter
KEEP_ALPHA_FEW while it has fewer: a branch needs no noise-floor run before its first experiment
(a verdict runs the incumbent on each seed it lacks, and later verdicts reuse those runs), and
without the stricter level such a start kept an equal candidate 1.6 % of the time at 3x the noise.

Simulated nights under the measured noise (tests/test_verdict.py, table in the README): a
candidate equal to the incumbent is kept well under 1 % of the time, one 20 % better more than
half the time, and at 3x the measured noise the null keep rate stays about 1 %; with or without a floor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from harness.config import DEFAULT_TASK
from harness.results import DROPPED, KEPT, number, parse_seed_scores
from harness.runs import DEFAULT_BACKEND, DEFAULT_BUDGET_S

# Each number below comes from benchmarks/noise_runs.tsv (8 runs of today's train.py on the 256-episode
# panel: one run's sd is 12.8 % of its score, 0.016 at 0.126; README "Noise") and from the simulated
# nights in tests/test_verdict.py, which are driven by that file.
MIN_SEEDS_TO_KEEP = 3
MAX_SEEDS = 8            # at 6, a 20 % better candidate was kept about a third of the time; at 8, 58 %
KEEP_ALPHA = 0.003       # one-sided per look; null keeps stay about 1 % over 6 looks, also at 3x the noise
KEEP_ALPHA_FEW = 0.0015  # the same while the incumbent has fewer than MAX_SEEDS seeds (no floor run yet)
MIN_REL_SD = 0.10        # the single-run sd is never assumed below this share of the incumbent's score (12.8 % measured)
HELD_OUT_Z = 2.33        # a keep whose held-out score is worse by more than this many SE is not kept
MIN_FLOOR_SEEDS = 3      # below this, the measured floor is not reported

KEEP, DISCARD, CONTINUE = "keep", "discard", "continue"


@dataclass(frozen=True)
class Decision:
    action: str          # keep | discard | continue
    reason: str
    k: int               # seeds compared
    mean_diff: float     # mean paired difference (negative = candidate better)
    se: float            # the standard error the rule used (nan before seed 3)

    @property
    def final(self) -> bool:
        return self.action != CONTINUE


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def _ss(xs: list[float]) -> float:
    m = _mean(xs)
    return sum((x - m) ** 2 for x in xs)


def _sd(xs: list[float]) -> float:
    return math.sqrt(_ss(xs) / (len(xs) - 1)) if len(xs) >= 2 else 0.0


def t_quantile(p: float, dof: float) -> float:
    """Student-t quantile: exact for 1 and 2 degrees of freedom, else the Cornish-Fisher expansion
    around the normal (within 2 % of the tables from 4 dof at the tails used here, 3.5 % at 3);
    dof <= 0 gives inf."""
    if dof <= 0:
        return math.inf
    if dof == 1:
        return math.tan(math.pi * (p - 0.5))
    if dof == 2:
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    z = NormalDist().inv_cdf(p)
    return (z + (z**3 + z) / (4 * dof) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * dof**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * dof**3))


def sigma_floor(incumbent_scores: list[float]) -> float:
    """The single-run sd the rule assumes for the incumbent: its measured seed spread, never below
    MIN_REL_SD x its mean (nan without scores)."""
    if not incumbent_scores:
        return math.nan
    return max(_sd(incumbent_scores), MIN_REL_SD * _mean(incumbent_scores))


def pair_sd(diffs: list[float], incumbent_scores: list[float]) -> tuple[float, int]:
    """(sd of one paired difference, degrees of freedom), pooled as in the module doc."""
    n, k = len(incumbent_scores), len(diffs)
    dof = max(n - 1, 0) + max(k - 1, 0)
    floor = math.sqrt(2.0) * MIN_REL_SD * _mean(incumbent_scores)
    if dof == 0:
        return floor, 0
    pooled = (2.0 * _ss(incumbent_scores) + (_ss(diffs) if k >= 2 else 0.0)) / dof
    return max(math.sqrt(pooled), floor), dof


def measured_floor(incumbent_scores: list[float]) -> float | None:
    """The raw measured noise floor (sample sd), or None with fewer than MIN_FLOOR_SEEDS seeds."""
    return _sd(incumbent_scores) if len(incumbent_scores) >= MIN_FLOOR_SEEDS else None


def keep_alpha(incumbent_seeds: int) -> float:
    """The one-sided level of a keep look against an incumbent scored on this many seeds."""
    return KEEP_ALPHA if incumbent_seeds >= MAX_SEEDS else KEEP_ALPHA_FEW


def decide(diffs: list[float], incumbent_scores: list[float], max_seeds: int = MAX_SEEDS, wave: int = 1) -> Decision:
    """The verdict after len(diffs) paired seeds (diffs = candidate - incumbent), which came in waves
    of `wave` seeds run at once (harness.slots): the rule looks only after a whole wave."""
    k = len(diffs)
    if k == 0:
        return Decision(CONTINUE, "no seed compared yet", 0, math.nan, math.nan)
    mean = _mean(diffs)
    sd, dof = pair_sd(diffs, incumbent_scores)
    if k == wave < MIN_SEEDS_TO_KEEP and mean > sd:  # the first look, before a keep is possible
        where = "on seed 1" if k == 1 else f"over the first {k} seeds"
        return Decision(DISCARD, f"clearly worse {where} (d={mean:+.4f} > pair sd {sd:.4f})", k, mean, math.nan)
    se = math.nan
    if k >= MIN_SEEDS_TO_KEEP:
        se = sd / math.sqrt(k)
        t = t_quantile(1.0 - keep_alpha(len(incumbent_scores)), dof)
        if -mean >= t * se:
            return Decision(KEEP, f"better by {-mean:.4f} >= {t:.2f} x SE {se:.4f} over {k} seeds", k, mean, se)
        if mean >= 0:
            return Decision(DISCARD, f"not better: mean d={mean:+.4f} >= 0 over {k} seeds", k, mean, se)
    if k >= max_seeds:
        se_text = "" if math.isnan(se) else f", SE {se:.4f}"
        return Decision(DISCARD, f"not shown better after {k} seed(s) (mean d={mean:+.4f}{se_text})", k, mean, se)
    return Decision(CONTINUE, f"unclear after {k} seed(s) (mean d={mean:+.4f}): adding a seed", k, mean, se)


def held_out_worse(candidate: list[float], incumbent_mean: float, incumbent_seeds: int) -> str | None:
    """Why a keep's held-out score is clearly worse than the incumbent's (beyond its own noise), or None.

    candidate: the held-out vel_err of each kept seed; incumbent_mean over incumbent_seeds seeds. The
    sd is the candidate's spread, never below MIN_REL_SD x the incumbent's held-out score."""
    k = len(candidate)
    if k == 0 or incumbent_seeds <= 0:
        return None
    sd = max(_sd(candidate), MIN_REL_SD * incumbent_mean)
    se = sd * math.sqrt(1.0 / k + 1.0 / incumbent_seeds)
    gap = _mean(candidate) - incumbent_mean
    if gap > HELD_OUT_Z * se:
        return (f"held-out clearly worse: {_mean(candidate):.4f} vs the incumbent's {incumbent_mean:.4f} "
                f"(+{gap:.4f} > {HELD_OUT_Z} x SE {se:.4f})")
    return None


def _matches(row: dict, commit: str, backend: str, budget_s: float, resources: str, task: str) -> bool:
    """A row whose scores pair with a run of commit on this backend, budget, slot resources and task."""
    if row["commit"] != commit or row["backend"] != backend or row["harness"] != "ok":
        return False
    if row.get("resources", "") != resources:  # a 4-core seed is not a 2-core seed (harness.slots)
        return False
    if (row.get("task") or DEFAULT_TASK) != task:  # rows from before the task column were all flat
        return False
    budget = number(row["budget_s"])
    return budget is not None and abs(budget - budget_s) <= 1e-6


def incumbent_runs(rows: list[dict], commit: str, backend: str, budget_s: float,
                   resources: str = "", task: str = DEFAULT_TASK) -> dict[int, list[float]]:
    """Every clean vel_err of `commit` per seed, from its baseline/keep/floor rows, in order; a floor
    row's `dropped` mark (evaluate.py floor --rerun) forgets that seed's earlier scores."""
    out: dict[int, list[float]] = {}
    for row in rows:
        if row["status"] not in (*KEPT, "floor") or not _matches(row, commit, backend, budget_s, resources, task):
            continue
        for seed, score in parse_seed_scores(row["seed_scores"]).items():
            if score == DROPPED:
                out.pop(seed, None)
            elif score is not None:
                out.setdefault(seed, []).append(score)
    return out


def incumbent_scores(rows: list[dict], commit: str, backend: str, budget_s: float,
                     resources: str = "", task: str = DEFAULT_TASK) -> dict[int, float]:
    """Per-seed vel_err of `commit`: the mean of its clean runs on each seed."""
    return {seed: _mean(v) for seed, v in incumbent_runs(rows, commit, backend, budget_s, resources, task).items()}


def incumbent_held_out(rows: list[dict], commit: str, backend: str, budget_s: float,
                       resources: str = "", task: str = DEFAULT_TASK) -> tuple[float, int] | None:
    """(held-out vel_err, seeds it is over) of `commit`'s last kept row that has one, or None."""
    for row in reversed(rows):
        if row["status"] in KEPT and _matches(row, commit, backend, budget_s, resources, task):
            held, seeds = number(row.get("held_out")), number(row.get("seeds"))
            if held is not None and seeds:
                return held, int(seeds)
    return None


def noise_floor(rows: list[dict], commit: str, backend: str = DEFAULT_BACKEND,
                budget_s: float = DEFAULT_BUDGET_S, resources: str = "", task: str = DEFAULT_TASK) -> float | None:
    """The measured noise floor of `commit`: sd of its per-seed vel_err (None below 3 seeds)."""
    return measured_floor(list(incumbent_scores(rows, commit, backend, budget_s, resources, task).values()))


def resolve_status(crash, has_incumbent, branch, inc_short, incumbent_failed, decision, never_keep, smoke_why):
    """(status, reason) of an experiment. Crashes, integrity problems and smoke runs are never kept."""
    if crash:
        status, reason = "crash", crash
    elif not has_incumbent:
        status, reason = "baseline", f"first experiment on {branch}"
    elif incumbent_failed:
        status = "discard"
        reason = f"incumbent {inc_short} failed on seed {incumbent_failed[0]} ({incumbent_failed[1]}): no paired comparison"
    else:
        status, reason = decision.action, decision.reason
    if never_keep and status == "crash":
        reason = f"{reason} | also: " + "; ".join(never_keep)
    elif never_keep:
        if status in KEPT:
            status = "discard"
        reason = "never kept: " + "; ".join(never_keep) + f" | {reason}"
    if smoke_why and status != "crash":
        reason = f"smoke run ({'; '.join(smoke_why)}): never kept; would be {status}: {reason}"
        status = "smoke"
    return status, reason
