"""How much of the environment's step rate the training loop keeps (target >= 0.5).

    uv run python benchmarks/train_throughput.py [--seconds 30] [--rounds 2]

Alternates, in one process and one run, (a) stepping train.py's training environment with random
actions and nothing else, and (b) train.py's own train(ctx) for the same wall-clock time, and prints
env steps/s for both and their ratio (median over rounds), plus the process's peak memory.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch._dynamo  # noqa: E402,F401  (torch.optim imports it lazily; keep that out of the timing)

import train  # noqa: E402
from harness import backends, config  # noqa: E402
from harness.context import TrainContext  # noqa: E402


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


def training(seconds: float, seed: int) -> float:
    torch.manual_seed(seed)
    ctx = TrainContext(seed, "cpu", "mujoco", seconds, False)
    ctx.start_clock()
    train.train(ctx)
    return ctx.env_steps() / ctx.elapsed()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--rounds", type=int, default=2)
    a = p.parse_args()
    ratios = []
    for r in range(a.rounds):
        env_rate = env_only(a.seconds, seed=r)
        train_rate = training(a.seconds, seed=r)
        ratios.append(train_rate / env_rate)
        print(f"round {r}: env-only {env_rate:8.0f} steps/s   training {train_rate:8.0f} steps/s   "
              f"ratio {ratios[-1]:.2f}", flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"num_envs {train.ENV_OPTIONS.get('num_envs')}: training keeps {statistics.median(ratios):.2f} "
          f"of the env-only step rate (median of {a.rounds}); peak memory {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
