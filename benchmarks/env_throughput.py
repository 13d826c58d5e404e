"""Environment throughput: harness env steps/s vs raw MuJoCo batch stepping, same model and threads.

For each num_envs it times, interleaved in short alternating rounds (so machine noise hits both
alike):
  raw  mujoco.batch.Batch(model, N, nthread).step(nstep=4), the env's own simulated model and batch
       settings, with the same actions as the env gets and fallen robots put back up,
  env  MujocoQuadrupedEnv.step(actions): the same physics plus actions in, RobotState,
       observation (with noise), terminations, resets, torch tensors out.
and prints policy steps/s (env steps = N per call) and the ratio env/raw: the median over
rounds of the ratio of adjacent raw and env windows. Target ratio >= 0.8. "non-physics share" is
the part of env.step's wall time spent outside its own batch.step (the Python/numpy/torch
work), a figure less sensitive to other load on the machine.

    uv run python benchmarks/env_throughput.py                      # 64..1024 envs, ~2 s per point
    uv run python benchmarks/env_throughput.py --num-envs 256 --seconds 10
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mujoco
import mujoco.batch
import numpy as np
import torch

from harness import config, threads
from harness.config import EnvOptions
from harness.mujoco import env as env_mod
from harness.mujoco.env import MujocoQuadrupedEnv


def raw_batch(model: mujoco.MjModel, n: int, nthread: int) -> mujoco.batch.Batch:
    b = mujoco.batch.Batch(model, n, nthread, persistent=env_mod._PERSISTENT)
    stand_up(b, np.arange(n))
    return b


def stand_up(b: mujoco.batch.Batch, ids: np.ndarray) -> None:
    qpos, qvel = b.bind("qpos"), b.bind("qvel")
    qpos[ids] = 0.0
    qpos[ids, 2] = config.BASE_INIT_HEIGHT
    qpos[ids, 3] = 1.0
    qpos[ids, 7:] = config.DEFAULT_JOINT_POS
    qvel[ids] = 0.0
    b.forward(ids)


def time_calls(fn, seconds: float) -> tuple[int, float]:
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls, elapsed


def measure(n: int, seconds: float, nthread: int, terrain: str, rounds: int, random_actions: bool) -> dict:
    env = MujocoQuadrupedEnv(EnvOptions(num_envs=n, terrain=terrain), seed=0, nthread=nthread)
    env.reset()
    raw = raw_batch(env.model, n, nthread)
    if random_actions:
        g = torch.Generator().manual_seed(0)
        pool = [0.5 * torch.randn(n, 12, generator=g) for _ in range(16)]
    else:
        pool = [torch.zeros(n, 12)]
    k = [0]
    physics_s = [0.0]
    inner = env._physics_step

    def timed_physics():  # the env's own batch.step, to split its time into physics and the rest
        t0 = time.perf_counter()
        out = inner()
        physics_s[0] += time.perf_counter() - t0
        return out

    env._physics_step = timed_physics

    def env_step():
        env.step(pool[k[0] % len(pool)])
        k[0] += 1

    raw_ctrl, raw_qpos = raw.bind("ctrl")[:, :config.NUM_JOINTS], raw.bind("qpos")
    default = np.asarray(config.DEFAULT_JOINT_POS)
    raw_pool = [default + config.ACTION_SCALE * a.numpy() for a in pool]
    r = [0]

    def raw_step():
        raw_ctrl[:] = raw_pool[r[0] % len(raw_pool)]
        raw.step(nstep=config.DECIMATION, stage=env_mod._STEP_STAGE)
        r[0] += 1
        if r[0] % 50 == 0:  # as the env's resets do: fallen robots start again
            fallen = np.flatnonzero(raw_qpos[:, 2] < 0.15)
            if len(fallen):
                stand_up(raw, fallen)

    for _ in range(10):  # warm up both
        env_step()
        raw_step()
    raw_calls = env_calls = 0
    raw_s = env_s = physics_s[0] = 0.0
    ratios = []
    for _ in range(rounds):
        rc, rs = time_calls(raw_step, seconds / (2 * rounds))
        ec, es = time_calls(env_step, seconds / (2 * rounds))
        ratios.append((ec / es) / (rc / rs))  # adjacent windows: shared-machine noise hits both alike
        raw_calls, raw_s, env_calls, env_s = raw_calls + rc, raw_s + rs, env_calls + ec, env_s + es
    env.close()
    return {
        "num_envs": n,
        "raw": raw_calls * n / raw_s,
        "env": env_calls * n / env_s,
        "ratio": float(np.median(ratios)),
        "work_share": 1.0 - physics_s[0] / env_s,
        "threads": raw.nthread,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-envs", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    p.add_argument("--seconds", type=float, default=2.0, help="timed seconds per point (raw + env)")
    p.add_argument("--rounds", type=int, default=8, help="alternating raw/env rounds per point")
    p.add_argument("--nthread", type=int, default=threads.usable_cpus(), help="batch threads (default: the harness's)")
    p.add_argument("--terrain", choices=config.TERRAINS, default="flat")
    p.add_argument("--zero-actions", action="store_true", help="both stand at the default pose instead of "
                   "getting N(0, 0.5) actions")
    args = p.parse_args(argv)
    threads.configure()

    print(f"cpus={os.cpu_count()} torch_threads={torch.get_num_threads()} mujoco={mujoco.__version__} "
          f"terrain={args.terrain} seconds/point={args.seconds}")
    print(f"{'num_envs':>8} {'threads':>7} {'raw steps/s':>12} {'env steps/s':>12} "
          f"{'env/raw (median)':>17} {'non-physics share':>18}")
    rows = []
    for n in args.num_envs:
        r = measure(n, args.seconds, args.nthread, args.terrain, args.rounds, not args.zero_actions)
        rows.append(r)
        print(f"{r['num_envs']:>8} {r['threads']:>7} {r['raw']:>12.0f} {r['env']:>12.0f} "
              f"{r['ratio']:>17.2f} {r['work_share']:>18.1%}", flush=True)
    best = max(rows, key=lambda r: r["env"])
    ratios = np.array([r["ratio"] for r in rows])
    print(f"---\nmean env/raw ratio: {ratios.mean():.2f} (min {ratios.min():.2f}); "
          f"fastest env: num_envs={best['num_envs']} at {best['env']:.0f} steps/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
