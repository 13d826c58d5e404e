"""Environment throughput: harness env steps/s vs raw MuJoCo batch stepping, same model and threads.

For each num_envs it times, interleaved in short alternating rounds (so machine noise hits all
alike):
  raw     mujoco.batch.Batch(model, N, nthread).step(nstep=4), the env's own simulated model and
          batch settings, with the same actions as the env gets and fallen robots put back up,
  before  the same, as the env stepped before its contact pairs and FootKinematics: contacts from
          MuJoCo's broad phase (robot.geom_collision_model, the same trajectories bit for bit) and
          mjSTAGE_VEL after every step (its 4 foot-velocity sensors are gone, so raw/before errs low),
  env     MujocoQuadrupedEnv.step(actions): the same physics plus actions in, RobotState,
          observation (with noise), terminations, resets, torch tensors out.
and prints policy steps/s (env steps = N per call), raw/before, and the ratio env/raw: the median
over rounds of the ratio of adjacent windows. Target ratio >= 0.8. "non-physics share" is
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

# as the harness runs its trainer (threads.child_env): OpenMP threads sleep when idle, else torch's
# idle threads spin on the cores the batch's threads need (the env's per-step torch work is small)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mujoco
import mujoco.batch
import numpy as np
import torch

from harness import config, threads
from harness.config import EnvOptions
from harness.mujoco import stepper_cpu
from harness.mujoco import robot
from harness.mujoco.env import MujocoQuadrupedEnv


def raw_batch(model: mujoco.MjModel, n: int, nthread: int) -> mujoco.batch.Batch:
    b = mujoco.batch.Batch(model, n, nthread, persistent=stepper_cpu.PERSISTENT)
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
    inner = env._sim.step

    def timed_physics(nstep):  # the env's own batch.step, to split its time into physics and the rest
        t0 = time.perf_counter()
        out = inner(nstep)
        physics_s[0] += time.perf_counter() - t0
        return out

    env._sim.step = timed_physics

    def env_step():
        env.step(pool[k[0] % len(pool)])
        k[0] += 1

    default = np.asarray(config.DEFAULT_JOINT_POS)
    raw_pool = [default + config.ACTION_SCALE * a.numpy() for a in pool]

    def stepper(batch: mujoco.batch.Batch, stage: int):
        ctrl, qpos, r = batch.bind("ctrl")[:, :config.NUM_JOINTS], batch.bind("qpos"), [0]

        def step():
            ctrl[:] = raw_pool[r[0] % len(raw_pool)]
            batch.step(nstep=config.DECIMATION, stage=stage)
            r[0] += 1
            if r[0] % 50 == 0:  # as the env's resets do: fallen robots start again
                fallen = np.flatnonzero(qpos[:, 2] < 0.15)
                if len(fallen):
                    stand_up(batch, fallen)
        return step

    before_model = robot.geom_collision_model(env.terrain)
    steps = {"raw": stepper(raw, stepper_cpu.STEP_STAGE), "env": env_step,
             "before": stepper(raw_batch(before_model, n, nthread), mujoco.mjtStage.mjSTAGE_VEL.value)}
    for _ in range(10):  # warm up all
        for step in steps.values():
            step()
    calls = dict.fromkeys(steps, 0)
    secs = dict.fromkeys(steps, 0.0)
    physics_s[0] = 0.0
    ratios, gains = [], []
    for _ in range(rounds):
        rate = {}
        for name, step in steps.items():  # adjacent windows: shared-machine noise hits all alike
            c, t = time_calls(step, seconds / (len(steps) * rounds))
            calls[name], secs[name], rate[name] = calls[name] + c, secs[name] + t, c / t
        ratios.append(rate["env"] / rate["raw"])
        gains.append(rate["raw"] / rate["before"])
    env.close()
    speed = {name: calls[name] * n / secs[name] for name in steps}
    return {
        "num_envs": n,
        **speed,
        "ratio": float(np.median(ratios)),
        "gain": float(np.median(gains)),
        "work_share": 1.0 - physics_s[0] / secs["env"],
        "threads": raw.nthread,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-envs", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    p.add_argument("--seconds", type=float, default=2.0, help="timed seconds per point (before + raw + env)")
    p.add_argument("--rounds", type=int, default=8, help="alternating before/raw/env rounds per point")
    p.add_argument("--nthread", type=int, default=threads.usable_cpus(), help="batch threads (default: the harness's)")
    p.add_argument("--terrain", choices=config.TERRAINS, default="flat")
    p.add_argument("--zero-actions", action="store_true", help="both stand at the default pose instead of "
                   "getting N(0, 0.5) actions")
    args = p.parse_args(argv)
    threads.configure()

    print(f"cpus={os.cpu_count()} torch_threads={torch.get_num_threads()} mujoco={mujoco.__version__} "
          f"terrain={args.terrain} seconds/point={args.seconds}")
    print(f"{'num_envs':>8} {'threads':>7} {'before':>8} {'raw steps/s':>12} {'raw/before':>11} {'env steps/s':>12} "
          f"{'env/raw (median)':>17} {'non-physics share':>18}")
    rows = []
    for n in args.num_envs:
        r = measure(n, args.seconds, args.nthread, args.terrain, args.rounds, not args.zero_actions)
        rows.append(r)
        print(f"{r['num_envs']:>8} {r['threads']:>7} {r['before']:>8.0f} {r['raw']:>12.0f} {r['gain']:>11.2f} {r['env']:>12.0f} "
              f"{r['ratio']:>17.2f} {r['work_share']:>18.1%}", flush=True)
    best = max(rows, key=lambda r: r["env"])
    ratios = np.array([r["ratio"] for r in rows])
    print(f"---\nmean env/raw ratio: {ratios.mean():.2f} (min {ratios.min():.2f}); "
          f"fastest env: num_envs={best['num_envs']} at {best['env']:.0f} steps/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
