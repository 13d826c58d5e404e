"""CPU threads of the training and scoring processes: the harness sets them, so a busy machine costs
a fair share of speed and no more.

Both MuJoCo's batch and torch get one thread per CPU this process may use (os.sched_getaffinity:
a slot's CPU set, a container's quota; torch's own default counts the machine's cores). OpenMP,
which runs torch's kernels, is told not to spin-wait: an idle spinning thread takes the core a
simulator thread or another process needs. Measured by benchmarks/contention.py on 2 cores beside
one busy process, the loop keeps 0.67x of its speed (0.45x with OpenMP spinning) and loses
nothing alone; one torch thread would keep 0.83x beside but lose 16% alone.
"""

from __future__ import annotations

import contextlib
import os


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity, or fewer where a cluster task was given fewer
    (HARNESS_SLOT_CPUS: Ray counts a task's CPUs but does not pin them)."""
    n = len(os.sched_getaffinity(0))
    return min(n, int(os.environ.get("HARNESS_SLOT_CPUS") or n))


def child_env(env: dict) -> dict:
    """The environment for a training or scoring process: OpenMP threads sleep when idle."""
    return {**env, "OMP_WAIT_POLICY": "PASSIVE"}


def configure(device: str = "cpu") -> None:
    """Give torch one thread per usable CPU in this process (before train.py is imported)."""
    import torch

    if str(device).startswith("cpu"):
        torch.set_num_threads(usable_cpus())


@contextlib.contextmanager
def one_torch_thread(device):
    """Run a block of small torch work on one thread when `device` is the CPU (the MuJoCo env's per-step
    logic). Its tensors are small, and torch's other intra-op threads, woken while the simulator's
    threads still hold the cores, made single ops take milliseconds: a foot-kinematics call took
    12 ms on 2 threads and 0.3 ms on one, 256 envs on 2 cores. The PPO around it keeps its threads."""
    import torch

    if getattr(device, "type", str(device)) != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
