"""Seeds as tasks on a real local Ray cluster (started here on 127.0.0.1 with 2 CPUs), smoke budgets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import FAST_ENV, STAND_STILL, commit_train, make_repo, rows, run_cmd, summary

from harness import gitops, summary as summary_keys
from harness.cluster import local_cluster
from harness.results import COLUMNS

ray = pytest.importorskip("ray", reason="Ray is a project dependency: run `uv sync`")

@pytest.fixture(scope="module")
def cluster():
    """The address of a 2-CPU Ray cluster of one node, for this module's tests."""
    with local_cluster(2) as address:
        yield address


def _on_cluster(repo, address, *args, seeds="1"):
    return run_cmd(repo, *args, "--smoke", "--cluster", address,
                   env={"HARNESS_MAX_SEEDS": seeds, "HARNESS_SANDBOX": "none"}, timeout=600)


def test_two_seeds_run_at_once_on_the_cluster_and_come_back_as_a_local_row(repo, cluster):
    gitops.set_incumbent(repo, "autoresearch/test", gitops.head(repo))
    p = _on_cluster(repo, cluster, "evaluate.py", "floor", "--seeds", "2", "--slots", "2")
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout
    # both seeds were on the cluster before either came back: one wave, side by side
    sent = [out.index(f"floor seed {k}: sent to the cluster") for k in (1, 2)]
    back = [out.index(f"floor seed {k}: ran on node") for k in (1, 2)]
    assert max(sent) < min(back), out
    [row] = rows(repo)                                   # read back through the strict reader: same columns
    assert row["status"] == "smoke" and row["seeds"] == "2" and set(row) == set(COLUMNS)
    assert row["resources"] == "ray: 1 cpu" and row["harness"] == "ok"
    assert list(summary(out)) == list(summary_keys.FLOOR_KEYS)   # the same summary block as a local run
    run_dir = repo / "runs" / row["run_id"]
    for seed_dir in ("seed1", "seed2"):
        for name in ("policy.pt2", "metrics.json", "train.log", "node.log"):
            assert (run_dir / seed_dir / name).exists(), f"{seed_dir}/{name}"
        assert json.loads((run_dir / seed_dir / "metrics.json").read_text())["resources"] == "ray: 1 cpu"


KILL_MY_TASK = """
import json
import os
import signal
from pathlib import Path

import evaluate

TRIES = Path("{tries}")


def train(ctx):
    import torch

    TRIES.write_text(TRIES.read_text() + "x" if TRIES.exists() else "x")
    if len(TRIES.read_text()) <= {kills}:   # the Ray worker running this seed dies: a lost task
        seedrun = os.getppid()
        ray_worker = int(open(f"/proc/{{seedrun}}/stat").read().rsplit(")", 1)[1].split()[1])
        os.kill(ray_worker, signal.SIGKILL)
    env = ctx.make_env(num_envs=2)
    env.reset()
    env.step(torch.zeros(2, 12))
    ctx.log(2, reward=0.0)
""" + STAND_STILL.split("ctx.log(2 * (i + 1), reward=0.0, vel_err=0.5)", 1)[1]


@pytest.mark.parametrize("kills, status", [(1, "smoke"), (2, "crash")])
def test_a_lost_task_is_sent_once_more_then_recorded_as_lost(tmp_path, cluster, kills, status):
    tries = tmp_path / "tries"
    repo = make_repo(tmp_path / "repo")
    commit_train(repo, KILL_MY_TASK.format(tries=tries, kills=kills), "a task that loses its worker")
    p = _on_cluster(repo, cluster, "train.py")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "the cluster lost this seed (WorkerCrashedError" in p.stdout and "sending it again" in p.stdout
    [row] = rows(repo)
    assert row["status"] == status and len(tries.read_text()) == 2, row
    if status == "crash":
        assert row["reason"].startswith("lost node: WorkerCrashedError") and "(sent 2 times)" in row["reason"]
        a = run_cmd(repo, "evaluate.py", "apply")
        assert a.returncode == 0 and "not judged" in a.stdout, a.stdout     # the machine failed, not train.py


HANGS = STAND_STILL.replace("env.reset()", "env.reset()\n    import time\n    time.sleep(3600)")


def test_a_task_that_never_heartbeats_is_killed_as_hang(tmp_path, cluster):
    repo = make_repo(tmp_path / "repo", HANGS)
    p = _on_cluster(repo, cluster, "train.py")
    assert p.returncode == 0, p.stdout + p.stderr
    [row] = rows(repo)
    assert row["status"] == "crash" and row["reason"].startswith("hang: no heartbeat for 4 s"), row


ENDLESS = STAND_STILL.replace("for i in range(3):", "for i in range(10**9):\n        time.sleep(0.05)").replace(
    "import evaluate\n", "import time\n\nimport evaluate\n")


def test_ctrl_c_on_the_head_cancels_every_task(tmp_path, cluster):
    repo = make_repo(tmp_path / "repo", ENDLESS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")}
    env.update(FAST_ENV, HARNESS_MAX_SEEDS="2", HARNESS_SANDBOX="none")
    gitops.set_incumbent(repo, "autoresearch/test", gitops.head(repo))
    commit_train(repo, ENDLESS.replace("reward=0.0", "reward=1.0"), "endless candidate")
    args = ["train.py", "--smoke", "--budget", "600", "--cluster", cluster, "--slots", "2"]
    p = subprocess.Popen([sys.executable, *args],
                         cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    for line in p.stdout:
        seen.append(line)
        if sum("sent to the cluster" in s for s in seen) == 2 or line.startswith("---"):
            break
    run_id = next(s.split()[1].rstrip(":") for s in seen if s.startswith("experiment "))
    deadline = time.monotonic() + 60
    while "harness.worker" not in _ps(run_id) and time.monotonic() < deadline:   # training on the node
        time.sleep(0.5)
    assert "harness.worker" in _ps(run_id)
    p.send_signal(signal.SIGINT)
    rest = p.communicate(timeout=60)[0]
    assert p.returncode == 130, "".join(seen) + rest
    deadline = time.monotonic() + 30
    while _ps(run_id) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _ps(run_id)


def _ps(run_id: str) -> str:
    """The processes of this run, on any node (here, all on this machine)."""
    lines = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
    return "\n".join(line for line in lines if run_id in line)
