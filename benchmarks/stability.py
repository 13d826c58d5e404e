"""Simulator stability under random actions: how many of 10 M env steps end in an unstable reset.

    uv run python benchmarks/stability.py                    # flat and rough, 10 M steps each
    uv run python benchmarks/stability.py --steps 1e6 --terrain rough

Steps the harness env (512 robots, the training defaults plus pushes and friction/mass
randomisation) with actions drawn N(0, 1) per joint, which is what a fresh policy of
INIT_NOISE_STD 1 sends, and every 50 steps a burst of N(0, 3) actions. On rough terrain the robots
are spread over all difficulty levels. Falls and time-outs reset as in training; a reset because
MuJoCo warned of or produced a blown-up state is counted as unstable. The gate is 0 unstable.
The 10 s stand and the drop test are tests/test_mujoco_env.py.

The simulator (--sim):
  pgs     C MuJoCo as the CPU trains and every score is taken (PGS, float64), the default;
  newton  C MuJoCo with MuJoCo Warp's solver (Newton, float64): the solver change alone, at CPU speed;
  warp    MuJoCo Warp itself (Newton, float32) on --device (cuda, or Warp's slow CPU device).

    uv run python benchmarks/stability.py --sim newton --steps 1e6
    uv run python benchmarks/stability.py --sim warp --device cuda --num-envs 4096
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from harness import config, threads  # noqa: E402
from harness.mujoco.env import MujocoQuadrupedEnv  # noqa: E402


def make_env(options, seed: int, sim: str, device: str) -> MujocoQuadrupedEnv:
    if sim == "warp":
        return MujocoQuadrupedEnv(options, seed=seed, device=device, stepper="warp")
    env = MujocoQuadrupedEnv(options, seed=seed, nthread=threads.usable_cpus())
    if sim == "newton":  # the same env on C MuJoCo stepping Warp's solver (before any reset)
        from harness.mujoco.stepper_cpu import CpuStepper
        from harness.mujoco.stepper_warp import gpu_model

        env.model = gpu_model(env.model)
        env._sim = CpuStepper(env.model, options.num_envs, threads.usable_cpus(), per_world_friction=True,
                              per_world_mass=True)
    return env


def run(terrain: str, steps: int, num_envs: int, seed: int, sim: str = "pgs", device: str = "cpu") -> dict:
    options = config.make_options(num_envs=num_envs, terrain=terrain, push_interval_seconds=5.0,
                                  friction_range=(0.4, 1.25), added_mass_range=(-1.0, 3.0))
    env = make_env(options, seed, sim, device)
    g = torch.Generator().manual_seed(seed)
    env.reset()
    if terrain == "rough":
        env.set_terrain_levels(torch.randint(0, config.TERRAIN_LEVELS, (num_envs,), generator=g))
    unstable = falls = calls = 0
    start = time.perf_counter()
    while calls * num_envs < steps:
        scale = 3.0 if calls % 50 == 0 else 1.0
        _, _, terminated, _, info = env.step((scale * torch.randn(num_envs, 12, generator=g)).to(env.device))
        unstable += info["unstable"]
        falls += int(terminated.sum())
        calls += 1
    env.close()
    return {"terrain": terrain, "env_steps": calls * num_envs, "unstable": unstable, "falls": falls,
            "seconds": time.perf_counter() - start}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=float, default=10e6, help="env steps per terrain")
    p.add_argument("--terrain", choices=(*config.TERRAINS, "both"), default="both")
    p.add_argument("--num-envs", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sim", choices=("pgs", "newton", "warp"), default="pgs")
    p.add_argument("--device", default="cpu", help="MuJoCo Warp's device (--sim warp)")
    a = p.parse_args()
    print(f"sim={a.sim} device={a.device if a.sim == 'warp' else 'cpu'} num_envs={a.num_envs}", flush=True)
    failed = False
    for terrain in config.TERRAINS if a.terrain == "both" else (a.terrain,):
        r = run(terrain, int(a.steps), a.num_envs, a.seed, a.sim, a.device)
        failed |= r["unstable"] > 0
        print(f"{r['terrain']:>6}: {r['env_steps']:,} env steps, {r['unstable']} unstable, "
              f"{r['falls']:,} falls, {r['seconds']:.0f} s", flush=True)
    print("FAIL: unstable resets" if failed else "ok: no unstable reset")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
