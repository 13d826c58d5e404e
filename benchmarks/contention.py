"""Training throughput beside a busy machine: the training loop alone and beside one competitor.

    uv run python benchmarks/contention.py [--seconds 40] [--rounds 2] [--policies harness,torch-1,spin]

For each thread policy it runs train.py's train(ctx) in a fresh process for --seconds of budget,
alone and then beside one single-threaded CPU-bound competitor (`while True: pass`), in
alternating rounds, and prints env steps/s for both and their ratio (median over rounds).
Fair sharing of 2 cores with one busy thread leaves about 0.5-0.7x; the target is >= 0.4x.
It also prints env steps per CPU-second of the training process, alone and beside, and their
ratio: near 1.0 would mean a budget counted in CPU seconds gives a loaded run the same steps.

Thread policies (harness.threads sets the first for every real run):
  harness    torch and the simulator one thread per usable CPU, OpenMP told not to spin-wait;
  torch-1    the same with one torch thread;
  spin       torch one thread per core with OpenMP's default spin-waiting (the old behaviour).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
from harness import threads
threads.configure()
import torch
if {torch_threads}:
    torch.set_num_threads({torch_threads})
import train
from harness.context import TrainContext
ctx = TrainContext(0, "cpu", "mujoco", {seconds}, False)
ctx.start_clock()
train.train(ctx)
cpu = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"steps_per_s": ctx.env_steps() / ctx.elapsed(), "torch_threads": torch.get_num_threads(),
                  "steps_per_cpu_s": ctx.env_steps() / (cpu.ru_utime + cpu.ru_stime)}}))
"""


def run_training(seconds: float, policy: str) -> dict:
    torch_threads = {"harness": 0, "torch-1": 1}.get(policy, len(os.sched_getaffinity(0)))
    code = CHILD.format(root=str(ROOT), seconds=seconds, torch_threads=torch_threads)
    env = threads_env(policy)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode:
        raise SystemExit(f"training run failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def threads_env(policy: str) -> dict:
    from harness import threads  # noqa: PLC0415 (keep torch out of this process)

    return dict(os.environ) if policy == "spin" else threads.child_env(dict(os.environ))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=40.0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--policies", default="harness,torch-1,spin")
    a = p.parse_args()
    sys.path.insert(0, str(ROOT))
    print(f"usable cpus={len(os.sched_getaffinity(0))} seconds={a.seconds} rounds={a.rounds}")
    print(f"{'policy':>14} {'alone steps/s':>14} {'beside steps/s':>15} {'ratio':>6}   "
          f"{'alone steps/cpu-s':>18} {'beside steps/cpu-s':>19} {'ratio':>6}")
    for policy in a.policies.split(","):
        alone, beside = [], []
        for _ in range(a.rounds):
            alone.append(run_training(a.seconds, policy))
            hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            try:
                time.sleep(0.5)
                beside.append(run_training(a.seconds, policy))
            finally:
                hog.kill()
                hog.wait()
        cols = []
        for key in ("steps_per_s", "steps_per_cpu_s"):
            ratio = statistics.median(b[key] / x[key] for x, b in zip(alone, beside))
            cols.append(f"{statistics.median(x[key] for x in alone):>14.0f} "
                        f"{statistics.median(b[key] for b in beside):>15.0f} {ratio:>6.2f}")
        print(f"{policy:>14} {cols[0]}   {cols[1]}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
