"""Equal slots of one machine, and the waves of seeds that run on them at once.

A verdict needs several paired seeds. On a machine with more cores than one run uses well, the
seeds of a wave run side by side, each in its own slot: its own CPU set (the thread's affinity,
which every process it starts inherits, so harness.threads gives torch and MuJoCo exactly that
many threads) and, on CUDA, its own GPU. Slots never share a core, so they do not slow each other.
A score depends on its slot's resources, so every row names them (`resources`) and scores are
paired only within the same resources (harness.verdict).
"""

from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from harness import proc

CPUS_PER_SLOT = 4      # default split: one slot per 4 cores (2 cores: one slot, as on a laptop)
MAX_SLOTS = 8          # a verdict uses at most verdict.MAX_SEEDS seeds: more slots would idle


@dataclass(frozen=True)
class Slot:
    cpus: tuple[int, ...]
    gpu: int | None = None      # CUDA device index, on the cuda device


def cpu_model() -> str:
    """This machine's CPU model name, e.g. 'AMD EPYC 7B13' ('' where /proc/cpuinfo has none)."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                name = line.split(":", 1)[1]
                for noise in ("(R)", "(TM)", "(tm)", " CPU", " Processor"):
                    name = name.replace(noise, "")
                return " ".join(name.split("@")[0].split())
    except OSError:
        pass
    return ""


def resources_label(cpus: int, gpu_name: str | None = None, where: str = "") -> str:
    """What one seed ran on, as results.tsv names it: '4 cpu (AMD EPYC 7B13)', '4 cpu + NVIDIA H100 ...'."""
    label = f"{cpus} cpu" + (f" ({where})" if where else "")
    return f"{label} + {gpu_name}" if gpu_name else label


def split(n_slots: int | None, total_cpus: int, largest_node: int | None = None) -> tuple[int, int]:
    """(slots, cpus per slot): n_slots, or one per CPUS_PER_SLOT cores; every slot the same size."""
    largest_node = largest_node or total_cpus
    if n_slots is None:
        n_slots = max(1, min(MAX_SLOTS, total_cpus // CPUS_PER_SLOT))
    if n_slots < 1:
        raise ValueError("--slots must be at least 1")
    per_slot = min(largest_node, total_cpus // n_slots)
    if per_slot < 1:
        raise ValueError(f"--slots {n_slots} leaves less than one CPU per slot ({total_cpus} CPUs)")
    return n_slots, per_slot


def gpu_slots(n_slots: int | None, gpus: int, where: str) -> int:
    """Slots on cuda: one GPU each, so n_slots (default: every GPU) must not exceed the GPUs."""
    n_slots = gpus if n_slots is None else n_slots
    if not 1 <= n_slots <= gpus:
        raise ValueError(f"--slots {n_slots} on cuda needs as many GPUs; {where} has {gpus}")
    return n_slots


def plan(n_slots: int | None, device: str) -> tuple[list[Slot], str]:
    """This machine's slots for a device, and the resources label of one slot."""
    cpus = sorted(os.sched_getaffinity(0))
    gpu_name = None
    gpus = 0
    if device == "cuda":
        import torch

        gpus = torch.cuda.device_count()   # none: backends.preflight stops the run with its own message
    if gpus:
        n_slots = gpu_slots(n_slots, gpus, "this machine")
        gpu_name = torch.cuda.get_device_name(0)
    n, per = split(n_slots, len(cpus))
    slots = [Slot(tuple(cpus[i * per:(i + 1) * per]), i if gpus else None) for i in range(n)]
    return slots, resources_label(per, gpu_name, cpu_model())


def run_all(jobs: list, n_slots: int, run, stop_on_failure: bool) -> list:
    """run(job, slot_index) for every job, at most n_slots at once, results in job order. With
    stop_on_failure, jobs not yet started are skipped (None) once one returns a result that is not ok.
    Ctrl-C (or SIGTERM) cancels them all: every running child is killed (harness.proc.CANCEL)."""
    results: list = [None] * len(jobs)
    if n_slots == 1:  # in this thread, one after another: exactly the one-slot behaviour
        for i, job in enumerate(jobs):
            results[i] = run(job, 0)
            if stop_on_failure and not results[i].ok:
                break
        return results
    free: queue.Queue = queue.Queue()
    for i in range(n_slots):
        free.put(i)
    failed = threading.Event()

    def one(i, job):
        if failed.is_set() and stop_on_failure:
            return
        slot = free.get()
        try:
            results[i] = run(job, slot)
        finally:
            free.put(slot)
        if not results[i].ok:
            failed.set()

    pool = ThreadPoolExecutor(n_slots, thread_name_prefix="slot")
    futures = [pool.submit(one, i, job) for i, job in enumerate(jobs)]
    try:
        for f in futures:
            f.result()
    except KeyboardInterrupt:
        proc.CANCEL.set()   # every supervised child and scoring process in the slots is killed
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results


def pin(slot: Slot) -> None:
    """Bind the calling thread (and so every process it starts) to the slot's CPUs."""
    os.sched_setaffinity(0, slot.cpus)
