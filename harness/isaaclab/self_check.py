"""A check to run once on a GPU machine with Isaac Lab installed: boot, build, stand, steps/s.

    OMNI_KIT_ACCEPT_EULA=YES python -m harness.isaaclab.self_check --terrain rough --num-envs 4096 --steps 200
"""

from __future__ import annotations

import os
import sys

import torch

from harness import config
from harness.config import EnvOptions
from harness.env_api import BackendError
from harness.isaaclab.boot import start_app
from harness.isaaclab.env import IsaacLabQuadrupedEnv
from harness.isaaclab.read_state import finite_rows


SELF_CHECK_MARK = "isaaclab-self-check:"


def self_check(terrain: str = "flat", num_envs: int = 16, steps: int = 100, device: str = "cuda:0") -> dict:
    """Boot, build, reset and step the real task with zero actions; report what it found.

        OMNI_KIT_ACCEPT_EULA=YES python -m harness.isaaclab.self_check --terrain rough --num-envs 4096 --steps 200

    Standing still with zero actions, a healthy setup shows base heights near 0.3 m, all four
    feet in contact and no terminations.
    """
    import time

    t0 = time.monotonic()
    start_app(device)
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
            "boot_s": round(t1 - t0, 1), "build_s": round(t2 - t1, 1),
            "env_steps_per_s": round(steps * num_envs / max(t4 - t3, 1e-9)),
            "isaac_joint_order": list(env._robot.joint_names),
            "articulation_bodies": list(env._robot.body_names),
            "contact_sensor_bodies": list(env._contact.body_names),
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

    p = argparse.ArgumentParser(description="Boot Isaac Sim and check the harness's Isaac Lab backend.")
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
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip Kit's teardown (its fast shutdown would exit 0 whatever happened)
