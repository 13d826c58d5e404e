"""The seed noise and the same-seed repeat noise of train.py's score, measured as real runs.

    uv run python benchmarks/noise.py --seeds 1 2 3 4 5 --repeat 1 2    # 5 seeds, then seeds 1 and 2 again
    uv run python benchmarks/noise.py --import-run runs/<run_id>          # add a `uv run train.py` run's seeds
    uv run python benchmarks/noise.py --rescore                          # score saved policies on today's panel
    uv run python benchmarks/noise.py --summary                          # the figures from the file so far
    uv run python benchmarks/noise.py --seeds 1 2 3 4 --budget 600       # the same at another budget
    uv run python benchmarks/noise.py --summary --budget 300 600         # each budget's figures and verdicts/h
    uv run python benchmarks/noise.py --seeds 1 2 3 --device cuda --data benchmarks/noise_runs_gpu.tsv
                                                                         # on a GPU (MuJoCo Warp), its own file

Each run is what `uv run train.py` does for one seed: the supervised worker trains HEAD's train.py
in the sandbox for the budget, then the separate scoring process scores the policy. Rows are
appended to benchmarks/noise_runs.tsv (commit, seed, repeat, vel_err, survival, env steps,
steps/s, training seconds, the load average before the run, the CPU share other processes used
during it: harness.load, the panel size it was scored on), so the data outlives the run. Take it on
a quiet machine: anything else running changes steps/s and the score. --rescore scores every saved
policy again on the harness's current panel (the score at run time stays in vel_err_at_run).
--summary prints, over the runs of one budget scored on the current panel, the seed sd (first run
of each seed) and the same-seed repeat sd (pooled over seeds run more than once), then what a night
gets from them: simulated nights (simulate) under the verdict rule, keep rates, verdicts per hour, and
the minutes from a new branch (its baseline) to its first verdict, with and without a floor run first.
tests/test_verdict.py drives its simulated nights with the same figures (noise_model, simulate).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import config, sandbox, scoring, seedrun, verdict  # noqa: E402
from harness.runs import ARTIFACT_NAME, DEFAULT_BUDGET_S  # noqa: E402
from harness.settings import Settings  # noqa: E402

DATA = ROOT / "benchmarks" / "noise_runs.tsv"
SEED_OVERHEAD_S = 30.0   # start-up and scoring beside each seed's budget, as measured on 2 cores
FIELDS = ["commit", "seed", "repeat", "vel_err", "survival", "env_steps", "steps_per_s", "train_s",
          "load_before", "budget_s", "run_dir", "foreign_share", "panel_episodes", "vel_err_at_run"]


def run_one(seed: int, repeat: int, budget: float, folder: Path, device: str = "cpu") -> dict:
    """One seed of folder/train.py as the harness trains and scores it (harness.seedrun)."""
    out = folder / f"seed{seed}-r{repeat}"
    out.mkdir(parents=True)
    load = os.getloadavg()[0]
    r = seedrun.train_and_score(ROOT, folder / "train.py", seed, out, Settings("mujoco", device, budget, [], 1),
                                sandbox.choose("mujoco"), check_load=False, say=lambda text: None)
    if not r.ok:
        raise SystemExit(f"seed {seed} repeat {repeat} crashed: {r.reason} (see {out / 'train.log'})")
    m = r.metrics
    return {"seed": seed, "repeat": repeat, "vel_err": f"{m['vel_err']:.4f}", "survival": f"{m['survival']:.3f}",
            "env_steps": r.env_steps, "steps_per_s": round(r.env_steps / r.train_s),
            "train_s": f"{r.train_s:.1f}",
            "load_before": f"{load:.2f}", "budget_s": budget, "run_dir": str(out.relative_to(ROOT)),
            "foreign_share": f"{r.foreign_share:.3f}", "panel_episodes": m["episodes"], "vel_err_at_run": ""}


def append(row: dict) -> None:
    new_file = not DATA.exists()
    with DATA.open("a", newline="") as f:
        w = csv.DictWriter(f, FIELDS, delimiter="\t")
        if new_file:
            w.writeheader()
        w.writerow(row)
    print("\t".join(str(row[k]) for k in FIELDS), flush=True)


def repeats_so_far(commit: str, seed: int) -> int:
    return sum(r["commit"] == commit and int(r["seed"]) == seed for r in read_rows())


def import_run(run_dir: Path) -> None:
    """Add the seeds of a finished `uv run train.py` experiment (its experiment.json)."""
    record = json.loads((run_dir / "experiment.json").read_text())
    commit = record["commit"][:7]
    for r in record["seeds"]:
        if not r["ok"]:
            continue
        m = r["metrics"]
        append({"commit": commit, "seed": r["seed"], "repeat": repeats_so_far(commit, r["seed"]),
                "vel_err": f"{m['vel_err']:.4f}", "survival": f"{m['survival']:.3f}", "env_steps": r["env_steps"],
                "steps_per_s": round(r["env_steps"] / r["train_s"]), "train_s": f"{r['train_s']:.1f}",
                "load_before": "", "budget_s": record["settings"]["budget_s"], "run_dir": f"{run_dir}/seed{r['seed']}",
                "foreign_share": f"{r['foreign_share']:.3f}" if r.get("foreign_share") is not None else "",
                "panel_episodes": m["episodes"], "vel_err_at_run": ""})


def read_rows() -> list[dict]:
    return list(csv.DictReader(DATA.open(), delimiter="\t")) if DATA.exists() else []


def rescore() -> None:
    """Score every run whose policy is still on disk on the harness's current panel."""
    rows = read_rows()
    for r in rows:
        policy = ROOT / r["run_dir"] / ARTIFACT_NAME
        if not policy.is_file() or r["panel_episodes"] == str(config.PANEL_EPISODES):
            continue
        m = scoring.run_evaluation(policy, policy.with_name(f"metrics_{config.PANEL_EPISODES}.json"), "mujoco", "cpu")
        r["vel_err_at_run"] = r["vel_err_at_run"] or r["vel_err"]
        r.update(vel_err=f"{m['vel_err']:.4f}", survival=f"{m['survival']:.3f}", panel_episodes=m["episodes"])
        print(f"{r['run_dir']}: {r['vel_err_at_run']} -> {r['vel_err']} ({m['eval_seconds']:.1f} s)", flush=True)
    with DATA.open("w", newline="") as f:
        w = csv.DictWriter(f, FIELDS, delimiter="\t")
        w.writeheader()
        w.writerows(rows)


def noise_model(rows: list[dict] | None = None, budget: float = DEFAULT_BUDGET_S) -> dict:
    """The noise figures over the runs of `budget` scored on the current panel: mean vel_err of the first
    run of each seed, its sd (one run's total spread), the pooled same-seed repeat sd, and the seed part
    (what repeats do not explain)."""
    rows = [r for r in (read_rows() if rows is None else rows)
            if r["panel_episodes"] == str(config.PANEL_EPISODES) and float(r["budget_s"]) == budget]
    by_seed: dict[int, list[float]] = {}
    for r in rows:
        by_seed.setdefault(int(r["seed"]), []).append(float(r["vel_err"]))
    first = [v[0] for v in by_seed.values()]
    groups = [v for v in by_seed.values() if len(v) >= 2]
    dof = sum(len(v) - 1 for v in groups)
    repeat_var = sum(sum((x - statistics.mean(v)) ** 2 for x in v) for v in groups) / dof if dof else math.nan
    total_sd = statistics.stdev(first) if len(first) >= 2 else math.nan
    return {"runs": len(rows), "seeds": len(first), "repeat_dof": dof, "level": statistics.mean(first),
            "total_sd": total_sd, "repeat_sd": math.sqrt(repeat_var),
            "seed_sd": math.sqrt(max(total_sd**2 - repeat_var, 0.0)),
            "steps_per_s": [float(r["steps_per_s"]) for r in rows]}


def simulated_night(rng: random.Random, level: float, seed_rel: float, rep_rel: float, gain: float,
                    same_code: bool, wave: int = 1, floor_seeds: int = verdict.MAX_SEEDS):
    """One experiment against an incumbent measured on `floor_seeds` seeds up front (evaluate.py floor;
    a seed past those is re-run beside the candidate's), its seeds run `wave` at once (harness.slots).
    A run scores mean * (1 + seed_rel * z_seed + rep_rel * z_repeat); the candidate's mean is
    level * (1 - gain). Identical code shares the seed's draw; other code gets its own.
    Returns (kept, seeds, waves, incumbent seeds re-run)."""
    n = verdict.MAX_SEEDS
    z_seed = [rng.gauss(0, 1) for _ in range(n)]
    inc = [level * (1 + seed_rel * z + rep_rel * rng.gauss(0, 1)) for z in z_seed]
    mean_c, diffs = level * (1 - gain), []
    for k in range(n):
        z = z_seed[k] if same_code else rng.gauss(0, 1)
        diffs.append(mean_c * (1 + seed_rel * z + rep_rel * rng.gauss(0, 1)) - inc[k])
        if (k + 1) % wave and k + 1 < n:
            continue
        d = verdict.decide(diffs, inc[:max(floor_seeds, k + 1)], wave=wave)
        if d.final:
            return d.action == verdict.KEEP, k + 1, -(-(k + 1) // wave), max(0, k + 1 - floor_seeds)
    raise AssertionError("the rule must decide by MAX_SEEDS")


def simulate(n: int, seed: int, **kw) -> tuple[float, float, float, float]:
    """(keep rate, mean seeds per verdict, mean waves per verdict, mean incumbent re-runs) over n simulated
    experiments."""
    rng = random.Random(seed)
    outcomes = [simulated_night(rng, **kw) for _ in range(n)]
    return tuple(sum(o[i] for o in outcomes) / n for i in range(4))


def summary(budget: float = DEFAULT_BUDGET_S) -> None:
    n = noise_model(budget=budget)
    if not n["runs"]:
        print(f"budget {budget:g} s: no runs on the {config.PANEL_EPISODES}-episode panel")
        return
    print(f"budget {budget:g} s, panel {config.PANEL_EPISODES} episodes: {n['runs']} runs, {n['seeds']} seeds, "
          f"mean vel_err {n['level']:.4f}")
    print(f"one run's sd (first run of each seed): {n['total_sd']:.4f} ({n['total_sd'] / n['level']:.1%} of the mean)")
    print(f"same-seed repeat sd (pooled, {n['repeat_dof']} dof): {n['repeat_sd']:.4f}; "
          f"seed part: {n['seed_sd']:.4f}")
    rates = n["steps_per_s"]
    print(f"steps/s: median {statistics.median(rates):.0f}, min {min(rates):.0f}, max {max(rates):.0f}")
    seed_s = budget + SEED_OVERHEAD_S
    # with no repeats at this budget, the repeat sd is taken as the same share of the score as at 300 s
    rep_rel = (n["repeat_sd"] / n["level"]) if n["repeat_dof"] else _rep_rel_300()
    seed_rel = math.sqrt(max((n["total_sd"] / n["level"]) ** 2 - rep_rel**2, 0.0))
    for floor in (verdict.MAX_SEEDS, 1):
        print(f"  simulated verdicts, the incumbent measured on {floor} seed(s) before the first experiment"
              f"{' (evaluate.py floor)' if floor > 1 else ' (the baseline only)'}:")
        for name, scale, gain in (("clearly worse (2x error)", 1, -1.0), ("equal but different code", 1, 0.0),
                                  ("the same, 3x the noise", 3, 0.0), ("20 % better", 1, 0.2)):
            rate, seeds, _, reruns = simulate(10_000 if gain == 0 else 4000, 7, level=n["level"],
                                              seed_rel=scale * seed_rel, rep_rel=scale * rep_rel, gain=gain,
                                              same_code=False, floor_seeds=floor)
            first = (floor + seeds + reruns) * seed_s / 60
            print(f"    {name:<25} kept {rate:6.2%}   {seeds:.2f} seeds a verdict (+{reruns:.2f} incumbent re-runs "
                  f"the first time)   {3600 / (seeds * seed_s):.2f} verdicts/h   first verdict {first:.0f} min "
                  f"after the branch starts")


def _rep_rel_300() -> float:
    n = noise_model()
    return n["repeat_sd"] / n["level"]


def main() -> int:
    global DATA
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="*", default=[])
    p.add_argument("--repeat", type=int, nargs="*", default=[], help="seeds to run once more afterwards")
    p.add_argument("--budget", type=float, nargs="+", default=[DEFAULT_BUDGET_S],
                   help="training seconds per run (one value to run seeds; with --summary, each to summarise)")
    p.add_argument("--summary", action="store_true")
    p.add_argument("--rescore", action="store_true", help="score saved policies on the current panel")
    p.add_argument("--import-run", type=Path, help="a harness run folder (with experiment.json) to add")
    p.add_argument("--device", default="cpu", help="cuda: train with MuJoCo Warp on the GPU (scored on C MuJoCo)")
    p.add_argument("--data", type=Path, default=DATA, help="the runs file (keep GPU runs apart from CPU runs)")
    a = p.parse_args()
    DATA = a.data.resolve()
    if a.import_run:
        import_run(a.import_run)
    if a.rescore:
        rescore()
    if a.summary or a.import_run or a.rescore:
        for budget in a.budget:
            summary(budget)
        return 0
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    folder = ROOT / "runs" / f"noise-{time.strftime('%Y%m%d-%H%M%S')}"
    folder.mkdir(parents=True)
    (folder / "train.py").write_bytes((ROOT / "train.py").read_bytes())
    for seed in [*a.seeds, *a.repeat]:
        append({"commit": commit, **run_one(seed, repeats_so_far(commit, seed), a.budget[0], folder, a.device)})
    summary(a.budget[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
