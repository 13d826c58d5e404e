"""What one run is told: task, backend, device, budget, its slots, and why it is a smoke run (never kept).

The command-line options of `uv run train.py` and `evaluate.py floor`, and the rule that any
budget but the default, and any test-only knob, makes a run smoke.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from harness import slots, verdict
from harness.backends import default_device, mujoco_stepper
from harness.config import DEFAULT_TASK, TASKS
from harness.runs import BACKENDS, DEFAULT_BACKEND, DEFAULT_BUDGET_S, DEVICES

SMOKE_BUDGET_S = 20.0
# Test-only knobs (they shrink timeouts, the panel, the seed count). A run that uses any is smoke.
TEST_OVERRIDES = (
    "HARNESS_STARTUP_TIMEOUT_S", "HARNESS_HANG_TIMEOUT_S", "HARNESS_OVERRUN_MARGIN_S", "HARNESS_EXPORT_TIMEOUT_S",
    "HARNESS_PANEL_EPISODES", "HARNESS_EVAL_STEPS", "HARNESS_MAX_SEEDS", "HARNESS_SANDBOX",
    "HARNESS_LOAD_CHECK", "HARNESS_QUIET_WAIT_S", "HARNESS_HELD_OUT", "HARNESS_MUJOCO_STEPPER",
)


class UsageError(RuntimeError):
    pass


@dataclass
class Settings:
    backend: str
    device: str
    budget_s: float
    smoke_why: list[str]
    max_seeds: int
    slots: int = 1                  # seeds run at once (harness.slots; on a cluster, Ray tasks)
    resources: str = ""             # what one seed runs on; scores are paired only within the same
    cluster: str | None = None      # a Ray address (--cluster), or None: this machine
    slot_cpus: int = 0              # CPUs per slot (on a cluster, the Ray task's num_cpus)
    task: str | None = DEFAULT_TASK  # the branch's (experiment.choose_task settles it; None: no --task given)

    @property
    def smoke(self) -> bool:
        return bool(self.smoke_why)

    def checks(self, knob: str) -> bool:
        """Whether a slow check runs: on every real run; on a smoke run only when a test sets knob=1."""
        return not self.smoke or os.environ.get(knob) == "1"


def make_settings(args) -> Settings:
    why = []
    if args.smoke:
        why.append("--smoke")
    budget = args.budget if args.budget is not None else (SMOKE_BUDGET_S if args.smoke else DEFAULT_BUDGET_S)
    if budget <= 0:
        raise UsageError("--budget must be positive")
    if budget != DEFAULT_BUDGET_S and not args.smoke:
        why.append(f"budget {budget:g} s")
    used = [k for k in TEST_OVERRIDES if os.environ.get(k)]
    if used:
        why.append("test overrides " + ",".join(used))
    max_seeds = int(os.environ.get("HARNESS_MAX_SEEDS") or (1 if why else verdict.MAX_SEEDS))
    device = args.device or default_device()
    settings = Settings(args.backend, device, budget, why, max_seeds, cluster=args.cluster, task=args.task)
    try:
        if args.cluster:
            from harness import cluster

            settings.slots, settings.slot_cpus, settings.resources = cluster.plan(args.cluster, args.slots, device)
        else:
            planned, settings.resources = slots.plan(args.slots, device)
            settings.slots, settings.slot_cpus = len(planned), len(planned[0].cpus)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.backend == "mujoco":
        if mujoco_stepper(device) == "warp":
            # the simulator is part of what a score ran on: a GPU row trained with MuJoCo Warp never pairs
            # with one from before it, when --device cuda trained on C MuJoCo (harness.verdict._matches)
            settings.resources += " (MuJoCo Warp)"
    return settings


def add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", choices=TASKS, default=None,
                   help="the terrain scored: flat or rough; chosen once per branch by its first run (default flat)")
    p.add_argument("--smoke", action="store_true", help=f"short budget ({SMOKE_BUDGET_S:g} s); never kept")
    p.add_argument("--budget", type=float, default=None, help=f"training seconds per seed (default {DEFAULT_BUDGET_S:g})")
    p.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND)
    p.add_argument("--device", choices=DEVICES, default=None, help="default: cuda if available, else cpu")
    p.add_argument("--slots", type=int, default=None,
                   help=f"seeds run at once, each on its own CPUs (default: one per {slots.CPUS_PER_SLOT} cores; "
                        "one per GPU on cuda)")
    p.add_argument("--cluster", metavar="auto|ADDRESS", default=None,
                   help="run the seeds as tasks on a Ray cluster (`ray start --head`); the results stay here")
