"""Backend selection: one place that knows which simulator builds the environments.

MuJoCo (CPU, embedded) is the default. Isaac Lab needs Isaac Sim booted before any
`isaaclab` import, so a process calls start_backend() once, early, before make_env().
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from harness.config import EnvOptions
from harness.env_api import BackendError
from harness.runs import BACKENDS

if TYPE_CHECKING:
    import torch


def default_device() -> str:
    """cuda if torch sees a GPU here, else cpu."""
    if not any(Path("/dev").glob("nvidia[0-9]*")) and not os.environ.get("CUDA_VISIBLE_DEVICES"):
        return "cpu"  # no GPU device node: skip importing torch just to learn that
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_backend(name: str) -> str:
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; choose one of {BACKENDS}")
    return name


def start_backend(name: str, device: torch.device) -> None:
    """Boot the simulator application if the backend has one (Isaac Sim); MuJoCo has none."""
    if check_backend(name) == "isaaclab":
        from harness.isaaclab.boot import start_app

        start_app(device)


def make_env(
    name: str,
    options: EnvOptions,
    seed: int,
    device: torch.device,
    external_commands: bool = False,
):
    """Build a QuadrupedEnv (harness.env_api) on the named backend.

    external_commands=True is evaluation's mode: the env never samples commands itself;
    the caller sets them with env.set_commands().
    """
    if check_backend(name) == "mujoco":
        from harness.mujoco.env import MujocoQuadrupedEnv

        return MujocoQuadrupedEnv(options, seed=seed, device=device, external_commands=external_commands)
    from harness.isaaclab.env import IsaacLabQuadrupedEnv

    return IsaacLabQuadrupedEnv(options, seed=seed, device=device, external_commands=external_commands)
