"""A check to run once where the Isaac Lab environment is installed: build, stand, steps/s.

    .venv-isaaclab/bin/python -m harness.isaaclab.self_check --num-envs 4096 --steps 200          # a GPU
    .venv-isaaclab/bin/python -m harness.isaaclab.self_check --device cpu --num-envs 4 --steps 50  # Warp's CPU
"""

from __future__ import annotations

import sys

import torch

from harness import config
from harness.config import EnvOptions
from harness.env_api import BackendError
from harness.isaaclab.boot import start
from harness.isaaclab.env import IsaacLabQuadrupedEnv
from harness.isaaclab.read_state import finite_rows


SELF_CHECK_MARK = "isaaclab-self-check:"


def self_check(terrain: str = "flat", num_envs: int = 16, steps: int = 100, device: str = "cuda:0") -> dict:
    """Start, build, reset and step the real task with zero actions; report what it found.

    Standing still with zero actions, a healthy setup shows base heights near 0.3 m, all four
    feet in contact and no terminations.
    """
    import time

    t0 = time.monotonic()
    start(device)
    t1 = time.monotonic()
    env = IsaacLabQuadrupedEnv(EnvOptions(num_envs=num_envs, terrain=terrain, obs_noise=False), seed=0, device=device)
    t2 = time.monotonic()
    try:
        obs = env.reset(yaw=torch.zeros(num_envs))
        zeros = torch.zeros(num_envs, config.NUM_JOINTS, device=env.device)
        terminated = 0
        _sync(env.device)
        t3 = time.monotonic()
        for _ in range(steps):
            obs, state, term, trunc, info = env.step(zeros)
            terminated += int(term.sum())
        _sync(env.device)
        t4 = time.monotonic()
        return {
            "terrain": terrain, "num_envs": num_envs, "steps": steps, "device": str(env.device),
            "start_s": round(t1 - t0, 1), "build_s": round(t2 - t1, 1),
            "env_steps_per_s": round(steps * num_envs / max(t4 - t3, 1e-9)),
            "isaac_joint_order": list(env._robot.joint_names),
            "articulation_bodies": list(env._robot.body_names),
            "contact_sensor_bodies": list(env._contact.sensor_names),
            "obs_shape": list(obs.shape),
            "base_height_mean": round(float(state.base_height.mean()), 4),
            "foot_contact_fraction": [round(float(x), 3) for x in state.foot_contact.float().mean(dim=0)],
            "projected_gravity_z_mean": round(float(state.projected_gravity[:, 2].mean()), 4),
            "terminations": terminated,
            "state_finite": bool(finite_rows(state).all()),
        }
    finally:
        env.close()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv=None) -> int:
    import argparse
    import json

    p = argparse.ArgumentParser(description="Build Isaac Lab's Go2 task and check the harness's Isaac Lab backend.")
    p.add_argument("--terrain", default="flat", choices=config.TERRAINS)
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--device", default="cuda:0")
    args = p.parse_args(argv)
    try:
        report = self_check(args.terrain, args.num_envs, args.steps, args.device)
    except BackendError as e:
        print(f"isaaclab backend: {e}", file=sys.stderr)
        return 2
    print(SELF_CHECK_MARK, json.dumps(report))   # one line: Kit prints plenty around it
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
