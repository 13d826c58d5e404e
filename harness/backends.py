"""Backend selection: one place that knows which simulator builds the environments.

MuJoCo (embedded) is the default: on the CPU it steps with C MuJoCo (mujoco.batch); on cuda,
training steps the same MJCF with MuJoCo Warp on the GPU (harness.mujoco.stepper_warp), while
scoring stays on C MuJoCo so that vel_err means the same on every machine. Isaac Lab 3.0 (kit-less,
Newton) has heavy imports and Warp's init, so a process calls start_backend() once, early, before
make_env() and the clock; a training worker calls warm_training() too (MuJoCo Warp's kernels).
preflight() checks that a backend and a device can run here (for MuJoCo Warp it also fills Warp's
kernel cache); the
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


# Test knob: "warp" trains the MuJoCo backend with MuJoCo Warp on the CPU (Warp's CPU device), which
# is how CI runs the GPU code without a GPU. Listed in harness.settings.TEST_OVERRIDES: a smoke run.
STEPPER_KNOB = "HARNESS_MUJOCO_STEPPER"


def mujoco_stepper(device) -> str:
    """The stepper training uses on `device`: MuJoCo Warp on cuda, C MuJoCo on the CPU (unless the
    test knob says warp)."""
    knob = os.environ.get(STEPPER_KNOB)
    if knob:
        if knob not in ("mujoco", "warp"):
            raise BackendError(f"{STEPPER_KNOB}={knob!r}: use mujoco or warp")
        return knob
    return "warp" if str(device).startswith("cuda") else "mujoco"


def check_backend(name: str) -> str:
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; choose one of {BACKENDS}")
    return name


def preflight(name: str, device: str) -> None:
    """Raise BackendError, saying what to install or set, if `name` cannot run on `device` here.

    Boots no simulator: an unknown backend; for Isaac Lab, the wrong Python, Isaac Lab 3.x or its
    packages missing, and on cuda an NVIDIA driver older than 580.65 or a GPU below compute capability
    7.5; CUDA asked for where torch sees none; for MuJoCo Warp (training on cuda), the package, the
    GPU (compute capability >= 7.5) and the driver, then its kernels compiled (a child process). Not
    being able to run is a problem of the machine, not an experiment: the caller stops before any run
    folder or results.tsv row exists.
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
    if name == "mujoco" and mujoco_stepper(device) == "warp":
        _preflight_warp(str(device))


WARP_PREFLIGHT_TIMEOUT_S = 1200.0  # a cold kernel compile on a GPU machine takes minutes


def _preflight_warp(device: str) -> None:
    """MuJoCo Warp's checks (package, GPU, driver), then its kernels compiled into Warp's cache, in a
    child process: outside the training sandbox (whose home is read-only: each seed's worker copies
    this cache and only loads from it), and so that the orchestrator holds no CUDA context."""
    import subprocess

    cmd = [sys.executable, "-m", "harness.mujoco.stepper_warp", "--warm", device]
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    try:
        p = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=WARP_PREFLIGHT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise BackendError(f"--device {device}: compiling MuJoCo Warp's kernels took over "
                           f"{WARP_PREFLIGHT_TIMEOUT_S:.0f} s. Run with --device cpu.") from None
    if p.returncode == 3:
        raise BackendError((p.stderr.strip().splitlines() or [f"--device {device}: MuJoCo Warp cannot run here"])[-1])
    if p.returncode != 0:
        tail = " ".join((p.stderr or p.stdout).strip().splitlines()[-3:])[:400]
        raise BackendError(f"--device {device}: MuJoCo Warp could not compile or run its kernels here ({tail}). "
                           "Run with --device cpu.")


def start_backend(name: str, device: torch.device) -> None:
    """Pay a backend's start-up before the clock (Isaac Lab: its imports and Warp's init); MuJoCo has none."""
    if check_backend(name) == "isaaclab":
        from harness.isaaclab.boot import start

        start(device)


def warm_training(name: str, device) -> None:
    """Before the training clock (harness.worker): compile or load MuJoCo Warp's kernels where training
    steps with it, so that the compile is start-up, reported in startup_seconds, and not budget."""
    if check_backend(name) == "mujoco" and mujoco_stepper(device) == "warp":
        from harness.mujoco import stepper_warp

        seconds = stepper_warp.warm_cache(device)
        print(f"harness: MuJoCo Warp on {device}: kernels ready in {seconds:.1f} s (start-up, not budget)", flush=True)


def make_env(
    name: str,
    options: EnvOptions,
    seed: int,
    device: torch.device,
    external_commands: bool = False,
    stepper: str | None = None,
):
    """Build a QuadrupedEnv (harness.env_api) on the named backend.

    external_commands=True is evaluation's mode: the env never samples commands itself;
    the caller sets them with env.set_commands(). stepper (MuJoCo only): "mujoco" or "warp"; None
    picks mujoco_stepper(device). Scoring asks for "mujoco" on any device: every score, whatever
    machine trained the policy, is measured on the same C MuJoCo model.
    """
    if check_backend(name) == "mujoco":
        from harness.mujoco.env import MujocoQuadrupedEnv

        from harness.threads import usable_cpus

        stepper = stepper or mujoco_stepper(device)
        return MujocoQuadrupedEnv(options, seed=seed, device=device, external_commands=external_commands,
                                  nthread=usable_cpus(), stepper=stepper)
    from harness.isaaclab.env import IsaacLabQuadrupedEnv

    return IsaacLabQuadrupedEnv(options, seed=seed, device=device, external_commands=external_commands)
