"""Seeds as tasks on a Ray cluster (`--cluster auto|ADDRESS`).

Each seed is one Ray task with its slot's resource request (num_cpus, one GPU on cuda). The task
writes a snapshot of the commit's files (HEAD's harness and evaluate.py, the run folder's train.py
copies) into a fresh folder on its node, runs `python -m harness.seedrun` there (the supervised
worker, then the separate evaluation process), and returns the seed folder (policy, metrics,
logs) as a tarball. Nothing on the node's disk but Python and the project's packages is used.
The head unpacks it into its own run folder; it alone writes results.tsv and does the git steps.

A task whose worker or node dies is sent once more (Ray places it on a live node); a second loss
is recorded as `lost node: ...`, which, like `loaded`, is no verdict on train.py. Ctrl-C on the head
cancels every task of the experiment (ray.cancel(force=True) kills the task's process tree).
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from harness import gitops, proc, scoring, slots, supervisor
from harness.results import SeedResult
from harness.seedrun import LOST, RESULT_FILE

TRIES = 2                  # a lost task is sent once more
WAIT_TICK_S = 0.5          # how often the head looks at a task (and at Ctrl-C)
SLACK_S = 120.0            # beyond every limit of the worker and the scoring, before the head gives up on a task


def _ray():
    # Ray's `uv run` integration would ship this checkout to every worker and run it with uv; the
    # seeds need only the snapshot each task carries, and the node's Python.
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    try:
        import ray
    except ImportError:
        raise ValueError("--cluster needs Ray, which is not installed in this environment: run `uv sync`") from None
    return ray


def connect(address: str):
    """Join the cluster at address ('auto': the one `ray start` left on this machine or RAY_ADDRESS)."""
    ray = _ray()
    if not ray.is_initialized():
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
        except Exception as e:  # ConnectionError, or a malformed address
            raise ValueError(f"no Ray cluster at {address!r} ({e}); start one with `uv run ray start --head` "
                             "(and `uv run ray start --address HEAD:6379` on the other machines)") from None
    return ray


_HOLD_LOCAL_CLUSTER = """
import sys, ray
ray.init(address="local", num_cpus=int(sys.argv[1]), include_dashboard=False, object_store_memory=200 * 2**20)
print(ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.read()          # until local_cluster closes it
ray.shutdown()
"""


@contextlib.contextmanager
def local_cluster(num_cpus: int):
    """A one-node Ray cluster on 127.0.0.1 with num_cpus, held by a child process; yields its address.
    For the tests and benchmarks: no token (since Ray 2.59 a local ray.init makes one that a client
    sends only under RAY_AUTH_MODE=token), and no shipping of this checkout to the workers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "HARNESS_"))}
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled", RAY_ENABLE_UV_RUN_RUNTIME_ENV="0")
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCAL_CLUSTER, str(num_cpus)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, env=env, text=True)
    try:
        address = holder.stdout.readline().strip()
        if not address:
            raise RuntimeError("the local Ray cluster did not start")
        yield address
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)


def plan(address: str, n_slots: int | None, device: str) -> tuple[int, int, str]:
    """(slots, CPUs per slot, resources label) on the cluster at address."""
    ray = connect(address)
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    cpus = [int(r.get("CPU", 0)) for r in nodes]
    gpu_name = None
    if device == "cuda":
        n_slots = slots.gpu_slots(n_slots, int(sum(r.get("GPU", 0) for r in nodes)), "the cluster")
        types = sorted({k.split(":", 1)[1] for r in nodes for k in r if k.startswith("accelerator_type:")})
        gpu_name = f"GPU {types[0]}" if len(types) == 1 else "GPU"
    n, per = slots.split(n_slots, sum(cpus), max(cpus, default=0))
    return n, per, "ray: " + slots.resources_label(per, gpu_name)


def snapshot(root: Path, commit: str) -> dict[str, bytes]:
    """The harness and evaluate.py as committed at `commit`: what every node runs."""
    names = gitops.git(root, "ls-tree", "-r", "--name-only", commit, "--", "harness", "evaluate.py").split("\n")
    return {name: gitops.show(root, commit, name) for name in names if name}


def _die_with_parent() -> None:
    """In the seed's process, before it execs Python: die with the Ray worker that a cancel kills
    (PR_SET_PDEATHSIG, as harness.proc.die_with_parent; a node does not import this checkout)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


def _task(files: dict[str, bytes], job: dict) -> dict:
    """On a node: write the files into a fresh folder, run harness.seedrun there, return the seed folder."""
    root = Path(tempfile.mkdtemp(prefix="autoresearch-seed-"))
    try:
        for rel, data in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        out = root / job["out"]
        out.mkdir(parents=True, exist_ok=True)
        # the seed dies with this worker from its first instruction: a cancel can come before Python is up
        p = subprocess.run([sys.executable, "-m", "harness.seedrun", json.dumps(job)], cwd=root,
                           env={**os.environ, **job["env"]}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           preexec_fn=_die_with_parent)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            tar.add(out, arcname=".")
        return {"node": socket.gethostname(), "exit": p.returncode, "output": p.stdout.decode(errors="replace")[-4000:],
                "files": buf.getvalue()}
    finally:
        shutil.rmtree(root, ignore_errors=True)


class Remote:
    """One experiment's seeds on the cluster; Session.run_seed calls run_seed from a slot thread."""

    def __init__(self, root: Path, settings, run_dir: Path, sources: dict[str, bytes]):
        self.ray = connect(settings.cluster)
        self.root, self.settings = root, settings
        files = snapshot(root, "HEAD")
        files.update({str((run_dir / rel).relative_to(root)): data for rel, data in sources.items()})
        self.files = self.ray.put(files)
        limits = supervisor.Limits.from_env()
        self.deadline_s = (limits.startup_s + settings.budget_s + limits.overrun_s + scoring.EVAL_TIMEOUT_S + SLACK_S)
        # _task goes to the nodes by value: they need not import this checkout's harness
        self.ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
        self.task = self.ray.remote(_task).options(
            num_cpus=settings.slot_cpus, num_gpus=1 if settings.device == "cuda" else 0, max_retries=0)

    def run_seed(self, train_rel: str, seed: int, out: Path, run_dir: Path, say) -> SeedResult:
        rel_out = str(out.relative_to(self.root))
        s = self.settings
        env = {k: v for k, v in os.environ.items() if k.startswith("HARNESS_")}
        job = {"train": str((run_dir / train_rel).relative_to(self.root)), "out": rel_out, "seed": seed,
               "task": s.task, "backend": s.backend, "device": s.device, "budget_s": s.budget_s, "smoke_why": s.smoke_why,
               "env": {**env, "HARNESS_SLOT_CPUS": str(s.slot_cpus)}}
        lost = ""
        for attempt in range(1, TRIES + 1):
            say(f"sent to the cluster ({s.resources})" + (f", try {attempt}" if attempt > 1 else ""))
            ref = self.task.remote(self.files, job)
            try:
                payload = self._wait(ref)
            except self.ray.exceptions.RayTaskError as e:   # the task's own code failed: not the node
                return SeedResult(seed, False, f"exception: the cluster task failed: {str(e).splitlines()[0]}", rel_out)
            except TimeoutError:
                return SeedResult(seed, False, f"hang: the cluster task ran over {self.deadline_s:.0f} s", rel_out)
            except self.ray.exceptions.RayError as e:       # its worker or node died
                lost = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200]
                say(f"the cluster lost this seed ({lost})" + ("; sending it again" if attempt < TRIES else ""))
                continue
            return self._unpack(payload, seed, out, rel_out, say)
        return SeedResult(seed, False, f"{LOST}: {lost} (sent {TRIES} times)", rel_out)

    def _wait(self, ref):
        """The task's result; on Ctrl-C (here, or harness.proc.CANCEL from the slots) it is cancelled."""
        t0 = time.monotonic()
        try:
            while not self.ray.wait([ref], timeout=WAIT_TICK_S)[0]:
                if proc.CANCEL.is_set():
                    raise KeyboardInterrupt
                if time.monotonic() - t0 > self.deadline_s:
                    self.ray.cancel(ref, force=True)
                    raise TimeoutError
        except KeyboardInterrupt:
            self.ray.cancel(ref, force=True)
            raise
        return self.ray.get(ref)

    def _unpack(self, payload: dict, seed: int, out: Path, rel_out: str, say) -> SeedResult:
        out.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(payload["files"]), mode="r:gz") as tar:
            tar.extractall(out, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        (out / "node.log").write_text(payload["output"])
        say(f"ran on node {payload['node']}")
        try:
            r = SeedResult(**json.loads((out / RESULT_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            why = f"exception: the cluster task ended without a result (exit {payload['exit']}); see {rel_out}/node.log"
            return SeedResult(seed, False, why, rel_out)
        r.dir = rel_out
        return r
