"""The supervisor on real child processes: heartbeat watchdog, budget margin, crashes, no strays."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from harness.supervisor import Limits, run_supervised

FAST = Limits(startup_s=5, hang_s=1.0, overrun_s=1.0, export_s=5)

PRELUDE = """
import json, os, sys, time, subprocess
fd = int(os.environ["HARNESS_MSG_FD"])
def send(**m):
    os.write(fd, (json.dumps(m) + "\\n").encode())
"""


def child(tmp_path, body: str) -> list[str]:
    script = tmp_path / "child.py"
    script.write_text(PRELUDE + textwrap.dedent(body))
    return [sys.executable, str(script)]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_normal_run_reports_startup_training_and_output(tmp_path):
    echoed = []
    progress = []
    cmd = child(tmp_path, """
        time.sleep(0.3)
        send(type="start")
        print("hello from training", flush=True)
        for i in range(3):
            send(type="beat", env_steps=100 * (i + 1))
            send(type="log", env_steps=10 ** 9, scalars={"reward": 1.0, "vel_err": 0.5})  # train.py's own count
        send(type="trained", train_s=0.5, env_steps=300)
        send(type="done", train_s=0.5, env_steps=300)
    """)
    r = run_supervised(cmd, tmp_path / "train.log", budget_s=10, limits=FAST, echo=echoed.append,
                       on_progress=lambda *a: progress.append(a))
    assert r.ok and r.reason is None
    # times are the supervisor's clock (milliseconds here, not the 0.5 s the child claims); steps the env's beats
    assert r.startup_s >= 0.25 and 0 <= r.train_s < 0.5 and r.env_steps == 300
    assert "hello from training" in echoed
    assert "hello from training" in (tmp_path / "train.log").read_text()
    assert progress and progress[-1][1] == 300 and progress[-1][2]["vel_err"] == 0.5


def test_silent_worker_is_killed_as_a_hang(tmp_path):
    cmd = child(tmp_path, """
        send(type="start")
        send(type="log", env_steps=1, scalars={})
        time.sleep(1000)
    """)
    t = time.monotonic()
    r = run_supervised(cmd, tmp_path / "train.log", budget_s=100, limits=FAST)
    assert not r.ok and r.reason.startswith("hang")
    assert time.monotonic() - t < 8


def test_worker_ignoring_the_deadline_is_killed_at_the_margin(tmp_path):
    cmd = child(tmp_path, """
        send(type="start")
        while True:
            send(type="beat", env_steps=1)
            time.sleep(0.1)
    """)
    t = time.monotonic()
    r = run_supervised(cmd, tmp_path / "train.log", budget_s=1.0, limits=FAST)
    took = time.monotonic() - t
    assert not r.ok and r.reason.startswith("timeout"), r.reason
    assert 2.0 <= took < 8


def test_startup_that_never_finishes_is_a_hang(tmp_path):
    cmd = child(tmp_path, "time.sleep(1000)\n")
    r = run_supervised(cmd, tmp_path / "train.log", budget_s=10,
                       limits=Limits(startup_s=1.0, hang_s=1, overrun_s=1, export_s=1))
    assert not r.ok and r.reason.startswith("hang: start-up")


def test_died_worker_and_error_message(tmp_path):
    r = run_supervised(child(tmp_path, "send(type='start')\nos._exit(3)\n"), tmp_path / "a.log", 10, FAST)
    assert not r.ok and "exit code 3" in r.reason
    r = run_supervised(child(tmp_path, "send(type='error', reason='exception: ValueError: boom')\n"),
                       tmp_path / "b.log", 10, FAST)
    assert not r.ok and r.reason == "exception: ValueError: boom"
    r = run_supervised(child(tmp_path, "send(type='start')\nos.kill(os.getpid(), 11)\n"), tmp_path / "c.log", 10, FAST)
    assert "SIGSEGV" in r.reason


def test_no_stray_processes_even_ones_that_left_the_group(tmp_path):
    pids = tmp_path / "pids"
    cmd = child(tmp_path, f"""
        a = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1000)"])
        b = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1000)"], start_new_session=True)
        open({str(pids)!r}, "w").write(f"{{a.pid}} {{b.pid}}")
        send(type="start")
        time.sleep(1000)
    """)
    r = run_supervised(cmd, tmp_path / "train.log", budget_s=100, limits=FAST)
    assert r.reason.startswith("hang")
    for pid in map(int, pids.read_text().split()):
        assert not alive(pid), f"process {pid} survived the supervisor"


def test_sigterm_of_the_parent_kills_the_worker(tmp_path):
    pids = tmp_path / "pid"
    worker = child(tmp_path, f"""
        open({str(pids)!r}, "w").write(str(os.getpid()))
        send(type="start")
        while True:
            send(type="beat")
            time.sleep(0.2)
    """)
    parent = tmp_path / "parent.py"
    parent.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.getcwd()!r})
        from harness.supervisor import run_supervised, Limits
        try:
            run_supervised({worker!r}, {str(tmp_path / 'w.log')!r}, 100, Limits(5, 5, 5, 5))
        except KeyboardInterrupt:
            print("interrupted", flush=True)
    """))
    p = subprocess.Popen([sys.executable, str(parent)], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not pids.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.3)
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=20)
    assert "interrupted" in out
    assert not alive(int(pids.read_text()))


def test_train_context_env_heartbeat_budget_and_curves(tmp_path):
    import csv

    import pytest
    import torch

    from harness.config import OptionError
    from harness.context import TrainContext

    sent = []
    ctx = TrainContext(3, "cpu", "mujoco", 0.5, True, sent.append, tmp_path / "curves.csv")
    with pytest.raises(OptionError):
        ctx.make_env(num_envs=100_000)
    env = ctx.make_env(num_envs=2)
    assert sent[-1] == {"type": "beat", "env_steps": 0}          # building an env beats (Isaac scenes are slow)
    env.reset()
    time.sleep(1.05)                                              # past the throttle
    env.step(torch.zeros(2, 12))
    assert sent[-1] == {"type": "beat", "env_steps": 2}          # a step beats...
    beats = len(sent)
    env.step(torch.zeros(2, 12))
    assert ctx.env_steps() == 4 and len(sent) == beats            # ...at most once a second
    ctx.start_clock()
    assert 0.0 < ctx.time_left() <= 0.5 and not ctx.time_up()
    ctx.log(4, reward=1.0)
    ctx.log(8, reward=2.0, **{"rew/track": 0.5})                  # a new column widens the file
    rows = list(csv.DictReader(open(tmp_path / "curves.csv")))
    assert [r["env_steps"] for r in rows] == ["4", "8"] and rows[1]["rew/track"] == "0.5" and rows[0]["rew/track"] == ""
    assert sent[-1]["type"] == "log" and sent[-1]["scalars"] == {"reward": 2.0, "rew/track": 0.5}
    # each log carries the harness's own step count in a beat, however fast iterations come
    assert sent[-2] == {"type": "beat", "env_steps": 4} and sent[-4] == {"type": "beat", "env_steps": 4}
    time.sleep(0.55)
    assert ctx.time_up() and ctx.time_left() == 0.0
    env.close()


def _busy_child_script(seconds: float) -> str:
    return f"""
        send(type="start")
        end = time.time() + {seconds}
        while time.time() < end:   # the worker's own CPU: never foreign
            send(type="beat", env_steps=1)
            sum(range(20000))
        send(type="trained", train_s={seconds}, env_steps=1)
        send(type="done", train_s={seconds}, env_steps=1)
    """


def test_foreign_cpu_is_measured_and_the_run_s_own_is_not(tmp_path):
    """A busy worker alone is quiet; the same worker beside a busy process is loaded (harness.load)."""
    from harness import load

    alone = run_supervised(child(tmp_path, _busy_child_script(3.0)), tmp_path / "a.log", budget_s=10, limits=FAST)
    assert alone.ok and not load.is_loaded(alone.foreign_share), alone.foreign_share
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        beside = run_supervised(child(tmp_path, _busy_child_script(3.0)), tmp_path / "b.log", budget_s=10, limits=FAST)
        meter = load.Meter()
        time.sleep(1.0)
        share = meter.share()
    finally:
        hog.kill()
        hog.wait()
    cpus = len(os.sched_getaffinity(0))
    assert beside.ok and load.is_loaded(beside.foreign_share), beside.foreign_share
    assert abs(beside.foreign_share - 1 / cpus) < 0.25, beside.foreign_share     # one busy process: one core's share
    assert abs(share - 1 / cpus) < 0.25, share
