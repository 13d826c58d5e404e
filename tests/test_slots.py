"""Slots: equal CPU sets per seed, waves of seeds at once, Ctrl-C that stops them all, and rows
that name their resources."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from conftest import FAST_ENV, STAND_STILL, commit_train, make_repo, rows, run_cmd, summary

from harness import gitops, slots
from harness.results import COLUMNS


def test_split_gives_equal_slots_of_whole_cpus():
    assert slots.split(None, 2) == (1, 2)          # a laptop: one slot, exactly as before slots
    assert slots.split(None, 16) == (4, 4)
    assert slots.split(None, 64) == (slots.MAX_SLOTS, 8)
    assert slots.split(3, 16) == (3, 5)
    assert slots.split(2, 16, largest_node=4) == (2, 4)   # a cluster task fits on one node
    for bad in ((3, 2), (0, 4)):
        with pytest.raises(ValueError):
            slots.split(*bad)


class _Done:
    def __init__(self, ok):
        self.ok = ok


def test_run_all_keeps_job_order_runs_n_at_once_and_stops_after_a_failure():
    lock, running, peak = threading.Lock(), [0], [0]

    def run(job, slot):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.2)
        with lock:
            running[0] -= 1
        return _Done(job != "bad")

    out = slots.run_all(list("abcd"), 2, run, stop_on_failure=True)
    assert [o.ok for o in out] == [True] * 4 and peak[0] == 2
    out = slots.run_all(["bad", "x", "y", "z"], 1, run, stop_on_failure=True)
    assert not out[0].ok and out[1:] == [None, None, None]        # one slot: nothing after a failure
    out = slots.run_all(["bad", "x", "y", "z"], 1, run, stop_on_failure=False)
    assert [o.ok for o in out] == [False, True, True, True]


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs to give a slot fewer")
def test_a_slot_thread_passes_its_cpus_to_every_process_it_starts():
    first = min(os.sched_getaffinity(0))
    seen = {}

    def slot_thread():
        slots.pin(slots.Slot((first,)))
        seen["child"] = subprocess.run([sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
                                       capture_output=True, text=True).stdout.strip()

    t = threading.Thread(target=slot_thread)
    t.start()
    t.join()
    assert seen["child"] == f"[{first}]"
    assert len(os.sched_getaffinity(0)) >= 2      # the orchestrator's other threads keep every CPU


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs for 2 slots")
def test_two_slots_run_the_seeds_of_a_verdict_at_once(tmp_path):
    repo = make_repo(tmp_path / "repo")
    inc = gitops.head(repo)
    gitops.set_incumbent(repo, "autoresearch/test", inc)
    commit_train(repo, STAND_STILL.replace("reward=0.0", "reward=1.0"), "same policy, other logging")
    p = run_cmd(repo, "train.py", "--smoke", "--slots", "2", env={"HARNESS_MAX_SEEDS": "2"})
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout
    # both candidate seeds were training before either was scored: one wave, side by side
    assert max(out.index("seed 1: training"), out.index("seed 2: training")) < min(
        out.index("seed 1: trained"), out.index("seed 2: trained"))
    [row] = rows(repo)
    label = slots.resources_label(1, None, slots.cpu_model())
    assert row["seeds"] == "2" and row["resources"] == label and row["delta"] == "0.0000", out
    s = summary(out)
    assert s["slots"] == "2" and s["resources"] == label
    run_dir = repo / "runs" / row["run_id"]
    for seed_dir in ("seed1", "seed2", "incumbent/seed1", "incumbent/seed2"):
        assert json.loads((run_dir / seed_dir / "metrics.json").read_text())["resources"] == label
    assert "integrity" not in out and row["harness"] == "ok", out   # other slots' folders are not a change


ENDLESS = STAND_STILL.replace("for i in range(3):", "for i in range(10**9):\n        time.sleep(0.05)").replace(
    "import evaluate\n", "import time\n\nimport evaluate\n")


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs for 2 slots")
def test_ctrl_c_stops_every_slot_and_leaves_no_process(tmp_path):
    repo = make_repo(tmp_path / "repo", ENDLESS)
    gitops.set_incumbent(repo, "autoresearch/test", gitops.head(repo))
    commit_train(repo, ENDLESS.replace("reward=0.0", "reward=1.0"), "endless candidate")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")}
    env.update(FAST_ENV, HARNESS_MAX_SEEDS="2")
    p = subprocess.Popen([sys.executable, "train.py", "--smoke", "--slots", "2", "--budget", "600"], cwd=repo, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    started, seen = set(), []
    for line in p.stdout:
        seen.append(line)
        if ": training " in line:
            started.add(line.split(":")[0])
        if len(started) == 2 or line.startswith("---"):
            break
    time.sleep(3)
    p.send_signal(signal.SIGINT)
    rest = p.communicate(timeout=60)[0]
    assert p.returncode == 130, "".join(seen) + rest
    time.sleep(1)
    ps = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(repo) not in ps, ps
    assert not (repo / "results.tsv").exists() or rows(repo) == []


def test_scores_from_other_slot_resources_are_never_paired():
    from harness import verdict

    def row(resources, scores):
        r = dict.fromkeys(COLUMNS, "")
        r.update(commit="aaaaaaa", status="floor", seed_scores=scores, backend="mujoco", budget_s="300", harness="ok",
                 resources=resources)
        return r

    rows_ = [row("2 cpu (X)", "1:0.1000;2:0.2000"), row("4 cpu (X)", "1:0.9000;3:0.3000"), row("", "4:0.4000")]
    assert verdict.incumbent_scores(rows_, "aaaaaaa", "mujoco", 300.0, "2 cpu (X)") == {1: 0.1, 2: 0.2}
    assert verdict.incumbent_scores(rows_, "aaaaaaa", "mujoco", 300.0, "4 cpu (X)") == {1: 0.9, 3: 0.3}
    assert verdict.incumbent_scores(rows_, "aaaaaaa", "mujoco", 300.0, "ray: 2 cpu") == {}
