"""The training loop's speed against the environment alone, and where its time goes.

    uv run python benchmarks/train_throughput.py [--seconds 30] [--rounds 2]

Alternates, in one process and one run, (a) stepping train.py's training environment with random
actions and nothing else, and (b) train.py's own train(ctx) for the same wall-clock time, under the
harness's thread policy (harness.threads). It prints env steps/s of both and their ratio (median
over rounds), and splits the training loop's wall time into:
  sim      the physics (the env's batch.step),
  env      the rest of env.step: observation, RobotState, terminations, resets,
  update   train.update (the PPO epochs),
  rollout  everything else: policy forward, rewards, GAE, logging.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import threads  # noqa: E402  (torch-free)

os.environ.update(threads.child_env({}))  # what the harness gives a training process, before torch loads

threads.configure()
import torch  # noqa: E402
import torch._dynamo  # noqa: E402,F401  (torch.optim imports it lazily; keep that out of the timing)

import train  # noqa: E402
from harness import backends, config  # noqa: E402
from harness.context import TrainContext  # noqa: E402
from harness.mujoco.env import MujocoQuadrupedEnv  # noqa: E402
from harness.mujoco.stepper_cpu import CpuStepper  # noqa: E402


def env_only(seconds: float, seed: int) -> float:
    options = config.make_options(**train.ENV_OPTIONS)
    env = backends.make_env("mujoco", options, seed=seed, device=torch.device("cpu"))
    env.reset()
    g = torch.Generator().manual_seed(seed)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.step(torch.randn(env.num_envs, env.action_dim, generator=g))
        steps += env.num_envs
    rate = steps / (time.perf_counter() - start)
    env.close()
    return rate


def timed(owner, name: str, totals: dict, key: str):
    """Wrap owner.name so its wall time adds up in totals[key]; returns the original."""
    inner = getattr(owner, name)

    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            totals[key] += time.perf_counter() - t0

    setattr(owner, name, wrapper)
    return inner


def training(seconds: float, seed: int) -> tuple[float, dict]:
    totals = dict.fromkeys(("sim", "step", "update"), 0.0)
    originals = [(CpuStepper, "step", timed(CpuStepper, "step", totals, "sim")),
                 (MujocoQuadrupedEnv, "step", timed(MujocoQuadrupedEnv, "step", totals, "step")),
                 (train, "update", timed(train, "update", totals, "update"))]
    try:
        torch.manual_seed(seed)
        ctx = TrainContext(seed, "cpu", "mujoco", seconds, False)
        ctx.start_clock()
        train.train(ctx)
        wall = ctx.elapsed()
    finally:
        for owner, name, fn in originals:
            setattr(owner, name, fn)
    split = {"sim": totals["sim"], "env": totals["step"] - totals["sim"], "update": totals["update"]}
    split["rollout"] = wall - sum(split.values())
    return ctx.env_steps() / wall, {k: v / wall for k, v in split.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--rounds", type=int, default=2)
    a = p.parse_args()
    print(f"usable cpus={threads.usable_cpus()} torch threads={torch.get_num_threads()} "
          f"num_envs={train.ENV_OPTIONS.get('num_envs')}")
    ratios, rates, splits = [], [], []
    for r in range(a.rounds):
        env_rate = env_only(a.seconds, seed=r)
        train_rate, split = training(a.seconds, seed=r)
        ratios.append(train_rate / env_rate)
        rates.append(train_rate)
        splits.append(split)
        shares = "  ".join(f"{k} {v:.0%}" for k, v in split.items())
        print(f"round {r}: env-only {env_rate:8.0f} steps/s   training {train_rate:8.0f} steps/s   "
              f"ratio {ratios[-1]:.2f}   time: {shares}", flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"training loop: {statistics.median(rates):.0f} env steps/s, {statistics.median(ratios):.2f} of the "
          f"env-only rate (median of {a.rounds}); peak memory {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
