"""Isaac Lab 3.0's installation, the device pre-flight, and the kit-less launch.

Torch-free at import, and it imports nothing of Isaac Lab at import: the pre-flight
(harness.backends.preflight) uses it in the orchestrator.

Isaac Lab 3.0 (PyPI, Python 3.12) runs without Isaac Sim: `isaaclab.app.launch_simulation(cfg,
args)` starts Kit only when a config needs it, and the Go2 velocity tasks simulate on Newton
(MuJoCo Warp), which needs no Kit. The harness runs kit-less only: a cfg that would need Kit
(Isaac Sim PhysX, a Kit camera) is refused before anything starts.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from harness.env_api import BackendError

if TYPE_CHECKING:
    import torch

PYTHON = (3, 12)
ISAACLAB_MAJOR = "3"
MIN_DRIVER = (580, 65)          # Isaac Lab 3.0 on CUDA 13 (torch 2.11.0's wheels)
MIN_COMPUTE_CAPABILITY = (7, 5)
# import names of what the backend needs: Isaac Lab, its tasks and Newton backend, Newton, Warp, USD
PACKAGES = ("isaaclab", "isaaclab_tasks", "isaaclab_newton", "isaaclab_rl", "newton", "warp", "pxr")
ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-isaaclab"

SETUP = "UV_PROJECT_ENVIRONMENT=$PWD/.venv-isaaclab uv sync --project harness/isaaclab --python 3.12"
INSTALL_HINT = (
    "Set up the Isaac Lab 3.0 environment beside the default one (Python 3.12; isaaclab==3.0.0 and its\n"
    "pins from PyPI, about 8 GB), from the repository root:\n"
    f"    {SETUP}\n"
    "then run the project's commands with its interpreter, e.g.\n"
    "    .venv-isaaclab/bin/python train.py --backend isaaclab --device cuda\n"
    "(see README.md, section 'Isaac Lab backend')."
)

_LAUNCH: ExitStack | None = None     # the open launch_simulation() context of this process


def missing_packages() -> list[str]:
    """Import names the backend needs that this interpreter cannot find (find_spec only)."""
    return [name for name in PACKAGES if importlib.util.find_spec(name) is None]


def isaaclab_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("isaaclab")
    except metadata.PackageNotFoundError:
        return None


def check_installed() -> None:
    """Python 3.12, Isaac Lab 3.x and the packages the adapter imports; the environment outside harness/."""
    here = f"{sys.executable} (Python {sys.version.split()[0]})"
    if sys.version_info[:2] != PYTHON:
        raise BackendError(f"Isaac Lab 3.0 runs on Python 3.12 only; this is {here}.\n{INSTALL_HINT}")
    missing = missing_packages()
    if missing:
        raise BackendError(f"the Isaac Lab backend needs the Python package(s) {missing}, not installed for {here}.\n"
                           f"{INSTALL_HINT}")
    version = isaaclab_version()
    if version is None or version.split(".")[0] != ISAACLAB_MAJOR:
        raise BackendError(f"the Isaac Lab backend targets Isaac Lab 3.x; {here} has isaaclab {version}.\n"
                           f"{INSTALL_HINT}")
    prefix = Path(sys.prefix).resolve()
    if ROOT / "harness" in prefix.parents:
        raise BackendError(
            f"this interpreter's environment {prefix} lies inside harness/, whose files the harness hashes and "
            f"scans on every run (a `uv run --project harness/isaaclab` without UV_PROJECT_ENVIRONMENT puts it "
            f"there). Remove it (rm -rf {prefix}) and set the environment up outside:\n{INSTALL_HINT}")


def driver_version() -> tuple[int, ...] | None:
    """The NVIDIA kernel driver's version, from /proc (or nvidia-smi), or None where there is none."""
    try:
        text = Path("/proc/driver/nvidia/version").read_text()
    except OSError:
        try:
            text = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                  capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            return None
    m = re.search(r"\b(\d{3,})\.(\d+)(?:\.(\d+))?\b", text)
    return tuple(int(x) for x in m.groups() if x is not None) if m else None


def check_device(device: str, driver: tuple[int, ...] | None | str = "probe",
                 capability: tuple[int, int] | None | str = "probe") -> None:
    """On cuda: an NVIDIA driver >= 580.65 and a GPU of compute capability >= 7.5 (Isaac Lab 3.0's
    floor). The cpu device (Warp's CPU kernels) needs nothing more. `driver` / `capability` are
    probed unless given (tests give them)."""
    if not str(device).startswith("cuda"):
        return
    if driver == "probe":
        driver = driver_version()
    if driver is None:
        raise BackendError(f"--device {device}: no NVIDIA driver found (/proc/driver/nvidia/version, nvidia-smi). "
                           "Isaac Lab 3.0 on cuda needs driver >= 580.65; or run with --device cpu (slow).")
    if tuple(driver[:2]) < MIN_DRIVER:
        raise BackendError(f"--device {device}: NVIDIA driver {'.'.join(map(str, driver))} is older than 580.65, "
                           "which Isaac Lab 3.0's CUDA 13 build needs. Update the driver, or run with --device cpu.")
    if capability == "probe":
        import torch

        index = torch.device(device).index or 0
        capability = torch.cuda.get_device_capability(index) if torch.cuda.is_available() else None
    if capability is not None and tuple(capability) < MIN_COMPUTE_CAPABILITY:
        raise BackendError(f"--device {device}: the GPU's compute capability {capability[0]}.{capability[1]} is below "
                           "7.5, Isaac Lab 3.0's floor. Use a newer GPU, or --device cpu.")


def isaac_device(device: torch.device | str) -> str:
    """Isaac Lab's (and Warp's) device string: 'cuda:N' or 'cpu'."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda:{device.index or 0}"
    if device.type == "cpu":
        return "cpu"
    raise BackendError(f"Isaac Lab simulates on 'cuda' or 'cpu', not {device}")


def start(device: torch.device | str) -> None:
    """Pay the imports before the training clock: Isaac Lab's task registry, Newton, Warp's init.

    Kit-less Isaac Lab has no application to boot; the simulation itself starts with the env
    (launch(), then ManagerBasedRLEnv). The harness calls this before its clock starts.
    """
    check_installed()
    isaac_device(device)
    import warp

    warp.init()
    import isaaclab_tasks  # noqa: F401  (registers the Isaac-Velocity-* tasks with gymnasium)


def launch(env_cfg, device: str) -> None:
    """Enter `launch_simulation(env_cfg, args)` for this process, kit-less; refused if the cfg needs Kit.

    Kept open until close_launch() (the env's close()): for a kit-less cfg it starts no
    application, and on exit it would close the launchers the cfg named.
    """
    global _LAUNCH
    if _LAUNCH is not None:
        return
    from isaaclab.app.sim_launcher import launch_simulation, validate_launch

    args = {"headless": True, "device": device}
    scan, kit_sources = validate_launch(env_cfg, dict(args))
    if kit_sources:
        raise BackendError(
            f"this Isaac Lab task cfg needs Isaac Sim (Kit) ({', '.join(map(str, kit_sources))}); the harness runs "
            "Isaac Lab kit-less on Newton only (the velocity tasks' default physics, newton_mjwarp)")
    stack = ExitStack()
    stack.enter_context(launch_simulation(env_cfg, args))
    _LAUNCH = stack


def close_launch() -> None:
    global _LAUNCH
    stack, _LAUNCH = _LAUNCH, None
    if stack is not None:
        stack.close()


def asset_root() -> str | None:
    """ISAACSIM_ASSET_ROOT, where Isaac Lab resolves go2.usd (None: NVIDIA's asset host)."""
    return os.environ.get("ISAACSIM_ASSET_ROOT") or None


ASSET_HINT = (
    "Isaac Lab loads the Go2 robot (go2.usd) and the ground plane from NVIDIA's asset host unless\n"
    "ISAACSIM_ASSET_ROOT points at a local copy. Where the host is unreachable, write this project's own\n"
    "quadruped there (README.md, 'Isaac Lab backend': what differs from the real Go2):\n"
    "    .venv-isaaclab/bin/python -m harness.isaaclab.asset ~/isaaclab-assets\n"
    "    export ISAACSIM_ASSET_ROOT=~/isaaclab-assets"
)
