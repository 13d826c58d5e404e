"""Where an experiment's files live, and the fixed run settings every module names. Torch-free.

    results.tsv                      one row per experiment (harness.results), never tracked
    runs/<run_id>/                   one experiment: train.py, candidate.diff, experiment.json, incumbent/
    runs/<run_id>/seed<k>/           one trained seed: policy.pt2, metrics.json, curves.csv, *.log
    runs/<run_id>/incumbent/seed<k>/ the incumbent re-run on the same seed

Both are written under the repository root (the orchestrator's working directory).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from harness.config import DEFAULT_TASK
from harness.results import parse_seed_scores

RESULTS_FILE = "results.tsv"
RUNS_DIR = "runs"
ARTIFACT_NAME = "policy.pt2"     # the exported policy in each seed folder (harness.artifact writes it)
CURVES_FILE = "curves.csv"       # one row per ctx.log() call
DIFF_FILE = "candidate.diff"     # an experiment's train.py change against its incumbent (git diff), kept after a reset

BACKENDS = ("mujoco", "isaaclab")
DEFAULT_BACKEND = "mujoco"
DEVICES = ("cpu", "cuda")
DEFAULT_BUDGET_S = 300.0         # training wall-clock per seed; any other budget makes a smoke run


def new_run_id(root: Path, commit_short: str) -> str:
    """<UTC stamp>-<commit>, with a -2, -3, ... suffix when that folder already exists."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    run_id, n = f"{stamp}-{commit_short}", 1
    while (Path(root) / RUNS_DIR / run_id).exists():
        n += 1
        run_id = f"{stamp}-{commit_short}-{n}"
    return run_id


def seed_dir(run_dir: Path, seed: int) -> Path:
    return Path(run_dir) / f"seed{seed}"


def scored_task(policy_path: Path) -> str:
    """The task a saved policy was scored on (metrics.json beside it), else the default."""
    try:
        return json.loads((Path(policy_path).parent / "metrics.json").read_text()).get("task", DEFAULT_TASK)
    except (OSError, ValueError, AttributeError):
        return DEFAULT_TASK


def best_seed_dir(run_dir: Path, row: dict[str, str]) -> Path | None:
    """The seed folder of a run whose policy scored best (by seed_scores), or any that has a policy."""
    scores = {k: v for k, v in parse_seed_scores(row.get("seed_scores") or "").items() if isinstance(v, float)}
    for seed in sorted(scores, key=scores.get):
        candidate = seed_dir(run_dir, seed)
        if (candidate / ARTIFACT_NAME).is_file():
            return candidate
    with_policy = sorted(p.parent for p in Path(run_dir).glob(f"seed*/{ARTIFACT_NAME}"))
    return with_policy[0] if with_policy else None
