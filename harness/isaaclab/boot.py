"""Isaac Lab's installation, the EULA and the Isaac Sim boot. Torch-free at import, and it never
imports `isaaclab` before AppLauncher: the pre-flight (harness.backends.preflight) uses it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import TYPE_CHECKING

from harness.env_api import BackendError

if TYPE_CHECKING:
    import torch

# Isaac Sim 5.x reads this variable; YES, Y or 1 (case-insensitive) accepts the NVIDIA
# Omniverse EULA without the interactive prompt, which would hang a supervised worker.
EULA_ENV_VAR = "OMNI_KIT_ACCEPT_EULA"
EULA_URL = "https://docs.isaacsim.omniverse.nvidia.com/latest/common/NVIDIA_Omniverse_License_Agreement.html"

INSTALL_HINT = (
    "Install Isaac Lab 2.3.x (with Isaac Sim 5.1) into a Python 3.11 environment, then this project's own\n"
    "dependencies into the same environment (Linux x86_64, GLIBC 2.35+, NVIDIA driver):\n"
    "    python3.11 -m venv ~/isaaclab-env && source ~/isaaclab-env/bin/activate && pip install -U pip\n"
    "    pip install torch==2.7.0 torchvision==0.22.0 --index-url https://download.pytorch.org/whl/cu128\n"
    "    pip install 'isaaclab[isaacsim,rsl-rl]==2.3.2.post1' --extra-index-url https://pypi.nvidia.com\n"
    "    pip install 'mujoco>=3.17' 'matplotlib>=3.8' 'imageio>=2.34' 'imageio-ffmpeg>=0.5' pytest\n"
    "then run the project's commands with that interpreter, e.g. `python train.py --backend isaaclab`\n"
    "(see README.md, section 'Isaac Lab backend')."
)

_APP = None            # the SimulationApp of this process, once booted


def app():
    """The SimulationApp of this process, or None before start_app()."""
    return _APP



def missing_packages() -> list[str]:
    """Top-level packages the backend needs that this interpreter cannot find.

    Uses find_spec only: importing `isaaclab` would bootstrap Isaac Sim (and its EULA prompt).
    """
    return [name for name in ("isaaclab", "isaacsim") if importlib.util.find_spec(name) is None]


def check_installed() -> None:
    missing = missing_packages()
    if missing:
        version = ".".join(map(str, sys.version_info[:3]))
        raise BackendError(
            f"the Isaac Lab backend needs the Python package(s) {missing}, which are not installed for "
            f"{sys.executable} (Python {version}).\n{INSTALL_HINT}"
        )
    if sys.version_info[:2] != (3, 11):
        raise BackendError(
            f"Isaac Sim 5.x / Isaac Lab 2.3.x run on Python 3.11 only; this is Python {sys.version.split()[0]} "
            f"({sys.executable}).\n{INSTALL_HINT}"
        )


def eula_accepted(environ=os.environ) -> bool:
    return environ.get(EULA_ENV_VAR, "").strip().lower() in ("yes", "y", "1")


def check_eula(environ=os.environ) -> None:
    if not eula_accepted(environ):
        raise BackendError(
            "Isaac Sim needs the NVIDIA Omniverse License Agreement (EULA) accepted before it starts, and the\n"
            "harness never accepts it for you. Read it at\n"
            f"    {EULA_URL}\n"
            f"and, if you accept it, set the environment variable Isaac Sim reads:\n"
            f"    export {EULA_ENV_VAR}=YES\n"
            f"(currently {EULA_ENV_VAR}={environ.get(EULA_ENV_VAR, '<unset>')!s})."
        )


def isaac_device(device: torch.device | str) -> str:
    """AppLauncher's device string: 'cuda:N' or 'cpu'."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda:{device.index or 0}"
    if device.type == "cpu":
        return "cpu"
    raise BackendError(f"Isaac Lab simulates on 'cuda' or 'cpu', not {device}")


def start_app(device: torch.device | str):
    """Boot Isaac Sim headless once per process (AppLauncher); returns the SimulationApp.

    Slow (tens of seconds warm; the very first run of an install also pulls and caches
    extensions, often over 10 minutes). The harness calls this before its clock starts.
    """
    global _APP
    if _APP is not None:
        return _APP
    check_installed()
    check_eula()
    dev = isaac_device(device)
    # The first `isaaclab` import bootstraps Isaac Sim; it must be AppLauncher's.
    from isaaclab.app import AppLauncher

    # Kit parses sys.argv; hide the harness's own arguments from it during the boot.
    argv = sys.argv
    sys.argv = argv[:1]
    try:
        launcher = AppLauncher(headless=True, device=dev)
    except SystemExit as e:  # Kit exits the interpreter when it cannot start
        raise BackendError(f"Isaac Sim failed to start on {dev} (exit status {e.code}); see its log above") from e
    finally:
        sys.argv = argv
    _APP = launcher.app
    return _APP
