"""The seed noise and the same-seed repeat noise of train.py's score, measured as real runs.

    uv run python benchmarks/noise.py --seeds 1 2 3 4 5 --repeat 1 2    # 5 seeds, then seeds 1 and 2 again
    uv run python benchmarks/noise.py --import-run runs/<run_id>          # add a `uv run train.py` run's seeds
    uv run python benchmarks/noise.py --summary                          # the figures from the file so far

Each run is what `uv run train.py` does for one seed: the supervised worker trains HEAD's train.py
in the sandbox for the budget, then the separate scoring process scores the policy. Rows are
appended to benchmarks/noise_runs.tsv (commit, seed, repeat, vel_err, survival, env steps,
steps/s, training seconds, the load average before the run), so the data outlives the run. Take it on a quiet
machine: anything else running changes steps/s and the score. --summary prints the seed sd (one
run per seed) and the same-seed repeat sd (pooled over seeds run more than once).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import sandbox, scoring, supervisor  # noqa: E402
from harness.runs import ARTIFACT_NAME, DEFAULT_BUDGET_S  # noqa: E402

DATA = ROOT / "benchmarks" / "noise_runs.tsv"
FIELDS = ["commit", "seed", "repeat", "vel_err", "survival", "env_steps", "steps_per_s", "train_s",
          "load_before", "budget_s", "run_dir"]


def run_one(seed: int, repeat: int, budget: float, folder: Path) -> dict:
    out = folder / f"seed{seed}-r{repeat}"
    out.mkdir(parents=True)
    train_copy = folder / "train.py"
    box = sandbox.choose("mujoco")
    cmd = [sys.executable, "-m", "harness.worker", "--train", str(train_copy), "--seed", str(seed),
           "--out", str(out), "--backend", "mujoco", "--device", "cpu", "--budget", str(budget)]
    cmd = sandbox.wrap(cmd, box, ROOT, writable=out, readable=[train_copy])
    load = os.getloadavg()[0]
    w = supervisor.run_supervised(cmd, out / "train.log", budget, cwd=ROOT)
    if not w.ok:
        raise SystemExit(f"seed {seed} repeat {repeat} crashed: {w.reason} (see {out / 'train.log'})")
    m = scoring.run_evaluation(out / ARTIFACT_NAME, out / "metrics.json", "mujoco", "cpu")
    return {"seed": seed, "repeat": repeat, "vel_err": f"{m['vel_err']:.4f}", "survival": f"{m['survival']:.3f}",
            "env_steps": w.env_steps, "steps_per_s": round(w.env_steps / w.train_s),
            "train_s": f"{w.train_s:.1f}",
            "load_before": f"{load:.2f}", "budget_s": budget, "run_dir": str(out.relative_to(ROOT))}


def append(row: dict) -> None:
    new_file = not DATA.exists()
    with DATA.open("a", newline="") as f:
        w = csv.DictWriter(f, FIELDS, delimiter="\t")
        if new_file:
            w.writeheader()
        w.writerow(row)
    print("\t".join(str(row[k]) for k in FIELDS), flush=True)


def repeats_so_far(commit: str, seed: int) -> int:
    rows = list(csv.DictReader(DATA.open(), delimiter="\t")) if DATA.exists() else []
    return sum(r["commit"] == commit and int(r["seed"]) == seed for r in rows)


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
                "load_before": "", "budget_s": record["settings"]["budget_s"], "run_dir": str(run_dir)})


def summary() -> None:
    rows = list(csv.DictReader(DATA.open(), delimiter="\t"))
    first = {}
    by_seed: dict[int, list[float]] = {}
    for r in rows:
        s, v = int(r["seed"]), float(r["vel_err"])
        first.setdefault(s, v)
        by_seed.setdefault(s, []).append(v)
    seeds = list(first.values())
    print(f"runs: {len(rows)}  seeds: {len(seeds)}  mean vel_err {statistics.mean(seeds):.4f}")
    if len(seeds) >= 2:
        print(f"seed sd (first run of each seed): {statistics.stdev(seeds):.4f}")
    groups = [v for v in by_seed.values() if len(v) >= 2]
    if groups:
        ss = sum(sum((x - statistics.mean(v)) ** 2 for x in v) for v in groups)
        dof = sum(len(v) - 1 for v in groups)
        print(f"same-seed repeat sd (pooled over {len(groups)} seeds, {dof} dof): {math.sqrt(ss / dof):.4f}")
    rates = [float(r["steps_per_s"]) for r in rows]
    print(f"steps/s: median {statistics.median(rates):.0f}, min {min(rates):.0f}, max {max(rates):.0f}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="*", default=[])
    p.add_argument("--repeat", type=int, nargs="*", default=[], help="seeds to run once more afterwards")
    p.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S)
    p.add_argument("--summary", action="store_true")
    p.add_argument("--import-run", type=Path, help="a harness run folder (with experiment.json) to add")
    a = p.parse_args()
    if a.import_run:
        import_run(a.import_run)
    if a.summary or a.import_run:
        summary()
        return 0
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    folder = ROOT / "runs" / f"noise-{time.strftime('%Y%m%d-%H%M%S')}"
    folder.mkdir(parents=True)
    (folder / "train.py").write_bytes((ROOT / "train.py").read_bytes())
    for seed in [*a.seeds, *a.repeat]:
        append({"commit": commit, **run_one(seed, repeats_so_far(commit, seed), a.budget, folder)})
    summary()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
