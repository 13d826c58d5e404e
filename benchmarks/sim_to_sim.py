"""The sim-to-sim gap: the same policies scored on C MuJoCo (the reference panel: PGS, float64) and
on MuJoCo Warp (Newton, float32; here on Warp's CPU device, the same kernels a GPU runs).

    uv run python benchmarks/sim_to_sim.py runs/<id>/seed*/policy.pt2            # full flat panel
    uv run python benchmarks/sim_to_sim.py P.pt2 --episodes 64 --steps 500      # a subset
    uv run python benchmarks/sim_to_sim.py P.pt2 --device cuda                  # Warp on the GPU

Each policy walks the identical panel (commands, start yaws, spawns) on both; the script prints
each one's vel_err and survival on both models and the gap warp - C, then the mean gap, its sd
over policies and the paired t statistic. Scores are always taken on C MuJoCo (harness.scoring);
this measures how far a policy's behaviour moves when only the simulator changes, in either
direction of training (a CPU-trained policy on Warp here; a GPU-trained one on C MuJoCo is the
harness's own scoring of a GPU run).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the harness runs its scoring process
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import config, scoring, threads  # noqa: E402


def score(path: str, stepper: str, device: str, episodes: int | None, steps: int | None, task: str) -> dict:
    scoring.SCORING_STEPPER = stepper  # this benchmark's one knob: which simulator walks the panel
    start = time.perf_counter()
    m = scoring.evaluate_policy(path, device=device if stepper == "warp" else "cpu", episodes=episodes,
                                steps=steps, task=task)
    m["seconds"] = time.perf_counter() - start
    return m


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("policies", nargs="+")
    p.add_argument("--episodes", type=int, default=None, help=f"panel episodes (default {config.PANEL_EPISODES})")
    p.add_argument("--steps", type=int, default=None, help=f"policy steps per episode (default {config.EPISODE_STEPS})")
    p.add_argument("--task", choices=config.TASKS, default="flat")
    p.add_argument("--device", default="cpu", help="Warp's device: cpu (Warp's CPU device) or cuda")
    args = p.parse_args(argv)
    threads.configure()
    print(f"task={args.task} episodes={args.episodes or config.PANEL_EPISODES} "
          f"steps={args.steps or config.EPISODE_STEPS} warp_device={args.device}")
    print(f"{'policy':<40} {'C vel_err':>10} {'Warp vel_err':>12} {'gap':>8} {'C surv':>7} {'Warp surv':>9} {'s C/Warp':>10}")
    gaps = []
    for path in args.policies:
        c = score(path, "mujoco", args.device, args.episodes, args.steps, args.task)
        w = score(path, "warp", args.device, args.episodes, args.steps, args.task)
        gaps.append(w["vel_err"] - c["vel_err"])
        print(f"{str(path)[-40:]:<40} {c['vel_err']:>10.4f} {w['vel_err']:>12.4f} {gaps[-1]:>+8.4f} "
              f"{c['survival']:>7.3f} {w['survival']:>9.3f} {c['seconds']:>4.0f}/{w['seconds']:<4.0f}", flush=True)
    mean = statistics.fmean(gaps)
    sd = statistics.stdev(gaps) if len(gaps) > 1 else float("nan")
    t = mean / (sd / math.sqrt(len(gaps))) if len(gaps) > 1 and sd > 0 else float("nan")
    print(f"---\nmean gap (warp - C): {mean:+.4f}  sd over policies: {sd:.4f}  paired t: {t:.2f}  (n={len(gaps)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
