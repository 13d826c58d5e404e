"""Process plumbing: dying with the supervisor, and no process outliving the run that started it."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
import time

CANCEL = threading.Event()   # set on Ctrl-C while slots run: every supervised child and scoring process stops
LIVE: set[int] = set()       # the running children of the slots (not strays): kill_strays leaves them
_SPAWNING = threading.Lock()  # a child is in LIVE before another slot's kill_strays can see it


def spawn(cmd: list[str], **popen_kw) -> subprocess.Popen:
    """subprocess.Popen, with the child in LIVE from its first instant (slots spawn and clean up side by side)."""
    with _SPAWNING:
        proc = subprocess.Popen(cmd, **popen_kw)
        LIVE.add(proc.pid)
    return proc


def die_with_parent() -> None:
    """Ask Linux to kill this process if the supervisor dies (PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except Exception:
        pass


_PR_SET_CHILD_SUBREAPER = 36
_subreaper = False  # set by become_subreaper(): only then are this process's descendants ours to end


def become_subreaper() -> bool:
    """Make this process the parent of any orphan below it, so a child cannot escape by double-forking."""
    global _subreaper
    try:
        _subreaper = ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1) == 0
    except Exception:
        _subreaper = False
    return _subreaper


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[-1].split()
            except OSError:
                continue
            if fields[0] not in ("Z", "X"):
                tree.setdefault(int(fields[1]), []).append(int(entry))
    return tree


def kill_strays() -> int:
    """SIGKILL every live descendant of this process outside LIVE and their subtrees; returns how many.

    Only in a process that called become_subreaper() (the orchestrator): there, a process that
    double-forked away from a finished worker is our child now, so this finds it even in its own
    session with its environment wiped.
    """
    killed = 0
    for _ in range(50):  # SIGKILL is asynchronous and a dying tree may still fork: repeat until clean
        if not _subreaper:
            break
        with _SPAWNING:
            tree = _children()
            stack, found = [p for p in tree.get(os.getpid(), []) if p not in LIVE], []
            while stack:
                pid = stack.pop()
                found.append(pid)
                stack += tree.get(pid, [])
            for pid in found:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
                except (ProcessLookupError, PermissionError):
                    pass
        if not found:
            break
        time.sleep(0.02)
    return killed
