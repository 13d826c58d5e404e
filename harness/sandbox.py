"""Where a training worker runs: a bubblewrap sandbox when this machine allows one, else bare.

In the sandbox (Linux, `bwrap` from the bubblewrap package, user namespaces allowed), nothing one
run writes outside its seed folder can reach a later run (README "The threat model" lists each channel):
- the whole filesystem is read-only: the repository, the virtual environment, Python itself;
- the worker's own seed folder is its only writable place, plus a private /tmp and /run (no
  daemon's socket file there is reachable: D-Bus, ssh-agent, systemd, docker);
- runs/ is an empty folder holding just that seed folder and the train.py being trained, so
  earlier runs' policies cannot be read (no borrowed compute);
- a fresh minimal /dev (null, zero, random, tty, ...) with a private /dev/shm; of the host's
  devices only the GPU's (/dev/nvidia*, /dev/dri), where they exist;
- its own IPC namespace (SysV shared memory, semaphores, message queues; POSIX queues) and PID
  namespace: when the worker ends, everything it started and created ends with it;
- no capabilities, even when the harness runs as root (bwrap keeps them for root otherwise: a
  remount would undo every read-only bind);
- on MuJoCo, no network: no TCP, and no abstract unix socket of the host.
The worker itself refuses the kernel keyring to train.py (harness.seccomp), sandbox or not.

Isaac Lab runs bare: Warp writes its kernel cache under $HOME, and Isaac Lab loads go2.usd from NVIDIA's
asset host unless ISAACSIM_ASSET_ROOT points at a local copy. There,
containment rests on harness.proc's subreaper and detection on harness.integrity's file watch and
harness.ipcwatch.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap) to sandbox training"


@dataclass(frozen=True)
class Sandbox:
    kind: str          # "bwrap" or "none"
    why: str = ""      # why there is none

    @property
    def label(self) -> str:
        return self.kind if self.kind != "none" else f"none ({self.why})"


@functools.lru_cache(maxsize=1)
def _bwrap_works() -> str | None:
    """None if bwrap can make a sandbox here, else why not."""
    exe = shutil.which("bwrap")
    if exe is None:
        return f"bwrap not found; {INSTALL_HINT}"
    probe = [exe, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid", "--unshare-ipc",
             "--cap-drop", "ALL", "--die-with-parent", "true"]
    try:
        p = subprocess.run(probe, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"bwrap failed to start: {e}"
    if p.returncode != 0:
        return "bwrap cannot create namespaces here: " + " ".join(p.stderr.split())[:160]
    return None


def choose(backend: str) -> Sandbox:
    """The sandbox for a training worker of this backend on this machine."""
    if os.environ.get("HARNESS_SANDBOX") == "none":  # test-only knob: it makes the run smoke
        return Sandbox("none", "HARNESS_SANDBOX=none")
    if backend != "mujoco":
        return Sandbox("none", f"{backend} runs unsandboxed")
    why = _bwrap_works()
    return Sandbox("none", why) if why else Sandbox("bwrap")


def wrap(cmd: list[str], sandbox: Sandbox, root: Path, writable: Path, readable: list[Path],
         network: bool = False) -> list[str]:
    """cmd, run inside the sandbox: all read-only but `writable`; runs/ shows only `readable` and `writable`."""
    if sandbox.kind != "bwrap":
        return cmd
    root, runs = Path(root).resolve(), Path(root).resolve() / "runs"
    args = [shutil.which("bwrap") or "bwrap", "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--new-session",
            "--cap-drop", "ALL", "--ro-bind", "/", "/", "--dev", "/dev", "--tmpfs", "/dev/shm", "--proc", "/proc",
            "--tmpfs", "/tmp"]
    if os.path.isdir("/run") and not os.path.islink("/run"):
        args += ["--tmpfs", "/run"]  # its sockets (D-Bus, agents, docker) would connect even read-only
    for dev in sorted(glob.glob("/dev/nvidia*")) + ["/dev/dri"]:  # a GPU backend's devices, only those
        args += ["--dev-bind-try", dev, dev]
    for keep in dict.fromkeys([root, Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()]):
        args += ["--ro-bind", str(keep), str(keep)]  # visible again, read-only, should they live under /tmp
    args += ["--tmpfs", str(runs)]
    if not network:
        args.append("--unshare-net")
    for path in readable:
        args += ["--ro-bind", str(Path(path).resolve()), str(Path(path).resolve())]
    w = str(Path(writable).resolve())
    args += ["--bind", w, w, "--chdir", str(root), "--"]
    return args + list(cmd)
