"""Backend selection: one place that knows which simulator builds the environments.

MuJoCo (CPU, embedded) is the default. Isaac Lab 3.0 (kit-less, Newton) has heavy imports and
Warp's init, so a process calls start_backend() once, early, before make_env() and the clock.
preflight() checks, without booting anything, that a backend and a device can run here; the
orchestrator calls it before it records anything. Torch-free at import.
"""

from __future__ import annotations

import os
import sys
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


def preflight(name: str, device: str) -> None:
    """Raise BackendError, saying what to install or set, if `name` cannot run on `device` here.

    Boots no simulator: an unknown backend; for Isaac Lab, the wrong Python, Isaac Lab 3.x or its
    packages missing, and on cuda an NVIDIA driver older than 580.65 or a GPU below compute capability
    7.5; CUDA asked for where torch sees none. Not being able to run is a problem of the machine, not
    an experiment: the caller stops before any run folder or results.tsv row exists.
    """
    if check_backend(name) == "isaaclab":
        from harness.isaaclab import boot

        boot.check_installed()
        boot.check_device(str(device))
    if str(device).startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise BackendError(
                f"--device {device}: PyTorch {torch.__version__} sees no CUDA device for {sys.executable}. "
                "Run with --device cpu, or on a machine with an NVIDIA GPU, its driver and a CUDA build of torch."
            )


def start_backend(name: str, device: torch.device) -> None:
    """Pay a backend's start-up before the clock (Isaac Lab: its imports and Warp's init); MuJoCo has none."""
    if check_backend(name) == "isaaclab":
        from harness.isaaclab.boot import start

        start(device)


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

        from harness.threads import usable_cpus

        return MujocoQuadrupedEnv(options, seed=seed, device=device, external_commands=external_commands,
                                  nthread=usable_cpus())
    from harness.isaaclab.env import IsaacLabQuadrupedEnv

    return IsaacLabQuadrupedEnv(options, seed=seed, device=device, external_commands=external_commands)
