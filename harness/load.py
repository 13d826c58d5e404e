"""How much of this process's CPUs other processes used: a run on a loaded machine is not a verdict.

The budget is wall-clock, so another process on the same cores (a second experiment, a build, the
coding agent's tests) costs the run steps, and steps are score. The meter reads the busy time of
the CPUs this process may use (/proc/stat, steal included: another VM is load too) and subtracts
what this process and the run's process tree used; the rest is foreign.
"""

from __future__ import annotations

import os
import time

from harness import proc

LOADED_SHARE = 0.15       # foreign use above this share of our CPUs flags a run (2 cores: 0.3 of a core)
QUIET_WINDOW_S = 5.0      # how long the machine is watched before a run starts
QUIET_WAIT_S = 600.0      # how long a run waits for a quiet machine before starting anyway
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_busy(cpus: list[int]) -> float:
    """Seconds the given CPUs were busy since boot (user, nice, system, irq, softirq, steal)."""
    try:
        lines = open("/proc/stat").read().splitlines()
    except OSError:
        return 0.0
    wanted, busy = {f"cpu{c}" for c in cpus}, 0
    for line in lines:
        name, *fields = line.split()
        if name in wanted:
            v = [int(x) for x in fields[:8]]
            busy += v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
    return busy / _TICK


def _stat(pid: int) -> tuple[str, float] | None:
    """(name, utime + stime) of one process, or None once it is gone."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return stat[stat.find("(") + 1:stat.rfind(")")], (int(fields[11]) + int(fields[12])) / _TICK


def _tree(pid: int) -> list[int]:
    """pid and its descendants (host pids, so a sandbox's own PID namespace is seen through)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                todo += [int(c) for c in open(f"/proc/{p}/task/{tid}/children").read().split()]
        except OSError:
            continue
    return out


class Meter:
    """Foreign CPU use from now on, in cores. Our own use is this process's plus that of the process
    tree under `pid` (set it once the run is started), polled while it runs: the rusage of reaped
    children cannot be used, as bubblewrap's PID namespace does not pass it on."""

    def __init__(self):
        self.cpus = sorted(os.sched_getaffinity(0))
        self.pid: int | None = None
        self.seen: dict[int, float] = {}
        t = os.times()
        self.t0, self.busy0, self.own0 = time.monotonic(), _cpu_busy(self.cpus), t.user + t.system

    def poll(self) -> None:
        """Record the watched tree's CPU so far (call it often: a process's last moments are lost)."""
        if self.pid is None:
            return
        for p in _tree(self.pid):
            stat = _stat(p)
            if stat is not None:
                self.seen[p] = max(self.seen.get(p, 0.0), stat[1])

    def foreign_cores(self) -> float:
        t = os.times()
        ours = t.user + t.system - self.own0 + sum(self.seen.values())
        wall = max(time.monotonic() - self.t0, 1e-6)
        return max(0.0, (_cpu_busy(self.cpus) - self.busy0 - ours) / wall)

    def share(self) -> float:
        """Foreign use as a share of our CPUs (0 = quiet, 0.5 = one busy process on 2 cores)."""
        return self.foreign_cores() / len(self.cpus)


def is_loaded(share: float | None) -> bool:
    return share is not None and share > LOADED_SHARE


def _proc_cpu() -> dict[int, tuple[str, float]]:
    stats = {int(e): _stat(int(e)) for e in os.listdir("/proc") if e.isdigit()}
    return {pid: stat for pid, stat in stats.items() if stat is not None}


def busiest(before: dict, after: dict, seconds: float, n: int = 3) -> str:
    """The processes that used the most CPU between two _proc_cpu() samples, e.g. 'pid 12 python3 (0.98 cores)'."""
    me = os.getpid()
    use = sorted(((after[p][1] - before[p][1]) / seconds, p, after[p][0]) for p in after if p in before and p != me)
    top = [f"pid {p} {name} ({cores:.2f} cores)" for cores, p, name in reversed(use[-n:]) if cores >= 0.05]
    return ", ".join(top) or "no single process stands out"


def wait_for_quiet(say, window_s: float = QUIET_WINDOW_S, max_wait_s: float | None = None) -> float:
    """Watch the machine in windows of window_s until foreign use is at most LOADED_SHARE (or max_wait_s
    passed; tests shorten it with HARNESS_QUIET_WAIT_S); say() what holds the CPUs while waiting.
    Returns the last window's share."""
    if max_wait_s is None:
        max_wait_s = float(os.environ.get("HARNESS_QUIET_WAIT_S") or QUIET_WAIT_S)
    deadline, said = time.monotonic() + max_wait_s, False
    while True:
        meter, procs = Meter(), _proc_cpu()
        if proc.CANCEL.wait(window_s):   # Ctrl-C while slots run
            raise KeyboardInterrupt
        share = meter.share()
        if not is_loaded(share):
            if said:
                say(f"the machine is quiet again (others use {share:.0%} of {len(meter.cpus)} CPUs); starting")
            return share
        if not said:
            say(f"waiting for a quiet machine: other processes use {share:.0%} of this run's {len(meter.cpus)} "
                f"CPUs ({busiest(procs, _proc_cpu(), window_s)}); a run beside them would get fewer steps. "
                "Stop them, or wait; checking every few seconds")
            said = True
        if time.monotonic() > deadline:
            say(f"still loaded after {max_wait_s:.0f} s (others use {share:.0%}); starting anyway: "
                "the run will be flagged and run again if the load stays")
            return share
