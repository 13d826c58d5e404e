"""Adversarial train.py files, one per class of attack, run end to end on real subprocesses.

Each asserts the forged number is never recorded as harness=ok, never kept and never shown as
best, and that no row of results.tsv is lost. Runs use the fast test knobs, so they are smoke.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import FAST_ENV, RETURN_STANDING_POLICY, STAND_STILL, commit_train, git, make_repo, rows, run_cmd, summary
from harness import gitops, journal, sandbox

BRANCH = "autoresearch/test"
SANDBOXES = ["bwrap", "none"]


def _sandbox_env(kind: str) -> dict:
    if kind == "bwrap" and sandbox.choose("mujoco").kind != "bwrap":
        pytest.skip(f"no bwrap sandbox on this machine: {sandbox.choose('mujoco').why}")
    return {"HARNESS_SANDBOX": "none"} if kind == "none" else {}


def _report(repo) -> dict:
    p = run_cmd(repo, "evaluate.py", "report", "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(p.stdout)


FORGED_ROW = """
import os
import socket
from pathlib import Path
_line = "\\t".join(["forged-run", "2026-01-01T00:00:00Z", "abcdef0", "keep", "0.0001", "-0.5", "0.1", "1.00",
                   "1", "0", "ok", "999", "300.0", "3", "1:0.0001", "", "mujoco", "300", "ok", "forged", "forged"])
_p = Path(os.environ.get("FORGE_ROOT", ".")) / "results.tsv"
if _p.exists():
    with open(_p, "a") as _f:
        _f.write(_line + "\\n")
"""

# Class 1a: code before `import evaluate` runs in the launcher: it appends a forged keep row.
CODE_BEFORE_IMPORT = FORGED_ROW + STAND_STILL

# Class 1b: everything after `import evaluate` never runs in the launcher.
CODE_AFTER_IMPORT = "import evaluate\n" + FORGED_ROW + STAND_STILL


def test_code_before_import_evaluate_is_refused_and_its_forged_row_is_never_trusted(repo):
    assert run_cmd(repo, "train.py", "--smoke").returncode == 0          # a genuine row first
    commit_train(repo, CODE_BEFORE_IMPORT, "forge a row from the launcher")
    p = run_cmd(repo, "train.py", "--smoke", env={"FORGE_ROOT": str(repo)})
    assert p.returncode == 0, p.stdout + p.stderr
    s = summary(p.stdout)
    assert s["verdict"] == "crash" and "before `import evaluate`" in s["reason"], s
    all_rows = rows(repo)
    forged = [r for r in all_rows if r["run_id"] == "forged-run"]
    assert len(forged) == 1                                   # it is there, untouched, but ...
    rep = _report(repo)
    assert rep["foreign_rows"] == ["forged-run"]              # ... flagged as not the harness's
    assert rep["best"] is None or rep["best"]["run_id"] != "forged-run"
    assert "not written by the harness" in p.stdout


def test_code_after_import_evaluate_never_runs_in_the_launcher(repo):
    commit_train(repo, CODE_AFTER_IMPORT, "forge a row after the import")
    p = run_cmd(repo, "train.py", "--smoke", env={"FORGE_ROOT": str(repo)})
    assert p.returncode == 0, p.stdout + p.stderr
    assert [r["run_id"] for r in rows(repo)] == [summary(p.stdout)["run_id"]]   # no forged row anywhere
    # in the worker, the same module code meets a read-only repository or the guard
    assert summary(p.stdout)["verdict"] == "crash" and "PermissionError" in summary(p.stdout)["reason"]


ESCAPES = """
import evaluate


def train(ctx):
    import os, subprocess, sys, torch
    root = os.environ["FORGE_ROOT"]
    script = (
        "import os, time, subprocess, pathlib\\n"
        "time.sleep(6)\\n"
        f"root = pathlib.Path({root!r})\\n"
        "with open(root / 'results.tsv', 'a') as f: f.write('late\\\\tforged\\\\n')\\n"
        "for p in root.glob('runs/*/seed1/policy.pt2'): p.write_bytes(b'zero policy')\\n"
        "subprocess.run(['git', 'update-ref', 'refs/autoresearch/incumbent/autoresearch/test', 'HEAD'], cwd=root)\\n"
        "(root / 'escaped.txt').write_text('alive')\\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")}
    # double fork into a new session, without the run's token: the classic daemon escape
    subprocess.Popen([sys.executable, "-c", "import os, subprocess, sys\\n"
                      "if os.fork() == 0:\\n    os.setsid()\\n"
                      f"    subprocess.Popen([sys.executable, '-c', {script!r}])\\n"
                      "os._exit(0)"], env=clean, start_new_session=True)
    env = ctx.make_env(num_envs=2)
    env.reset()
    env.step(torch.zeros(2, 12))
""" + RETURN_STANDING_POLICY


@pytest.mark.parametrize("box", SANDBOXES)
def test_a_process_that_escapes_the_run_dies_with_it(repo, box):
    commit_train(repo, ESCAPES, "escape")
    p = run_cmd(repo, "train.py", "--smoke", env={"FORGE_ROOT": str(repo), **_sandbox_env(box)})
    assert p.returncode == 0, p.stdout + p.stderr
    run_id = summary(p.stdout)["run_id"]
    policy = repo / "runs" / run_id / "seed1" / "policy.pt2"
    digest = hashlib.sha256(policy.read_bytes()).hexdigest()
    time.sleep(9)                                             # past the escaped child's delay
    assert not (repo / "escaped.txt").exists()
    assert hashlib.sha256(policy.read_bytes()).hexdigest() == digest
    assert [r["run_id"] for r in rows(repo)] == [run_id]
    assert gitops.incumbent(repo, BRANCH) is None


def test_harness_swapped_during_scoring_is_never_recorded_as_ok(repo):
    target = repo / "harness" / "scoring.py"
    original = target.read_bytes()

    def swap_while_scoring():
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            if list(repo.glob("runs/*/seed1/eval.log")):
                target.write_bytes(original + b"\n# swapped\n")
                time.sleep(0.3)
                target.write_bytes(original)                  # restored: the tree is clean again
                return
            time.sleep(0.02)

    t = threading.Thread(target=swap_while_scoring)
    t.start()
    p = run_cmd(repo, "train.py", "--smoke")
    t.join()
    assert p.returncode == 0, p.stdout + p.stderr
    assert git(repo, "status", "--porcelain") == ""
    s = summary(p.stdout)
    assert s["harness"] == "modified" and s["vel_err"] == "", s
    [row] = rows(repo)
    assert row["harness"] == "modified" and row["vel_err"] == "" and "harness/scoring.py" in row["reason"]


IMPORT_TIME_WORK = """
import evaluate
import time
import uuid
from pathlib import Path

time.sleep(12)         # "training" at import time, before train(ctx) is called


def train(ctx):
    import torch
""" + RETURN_STANDING_POLICY

RESETS_ITS_CLOCK = """
import evaluate
import time
import uuid
from pathlib import Path


def train(ctx):
    import torch
    env = ctx.make_env(num_envs=2)
    env.reset()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 12:
        ctx.start_clock()                    # pretend the budget just started
        env.step(torch.zeros(2, 12))
        ctx.log(2, reward=0.0)
        time.sleep(0.05)
""" + RETURN_STANDING_POLICY


def test_import_time_work_counts_toward_the_budget(repo):
    commit_train(repo, IMPORT_TIME_WORK, "train at import")
    p = run_cmd(repo, "train.py", "--budget", "4", env={"HARNESS_OVERRUN_MARGIN_S": "60", "HARNESS_HANG_TIMEOUT_S": "60"})
    assert p.returncode == 0, p.stdout + p.stderr
    [row] = rows(repo)
    assert float(row["train_s"]) >= 12.0, row
    assert "past the budget" in row["reason"], row


def test_resetting_its_own_clock_does_not_hide_the_time(repo):
    commit_train(repo, RESETS_ITS_CLOCK, "reset the clock")
    p = run_cmd(repo, "train.py", "--budget", "3")            # FAST_ENV: killed 2 s past the budget
    assert p.returncode == 0, p.stdout + p.stderr
    [row] = rows(repo)
    assert row["status"] == "crash" and row["reason"].startswith("timeout"), row
    assert float(row["train_s"]) >= 4.5, row                  # the supervisor's clock, not train.py's


RANDOM_POLICY = STAND_STILL.replace("torch.nn.init.zeros_(policy.weight)", "torch.manual_seed(7)")

BORROWS_IN_PROCESS = """
import evaluate


def train(ctx):
    import glob, os, torch
    [earlier] = glob.glob(os.path.join(os.environ["FORGE_ROOT"], "runs/*/seed1/policy.pt2")) or [None]
    if earlier is None:
        raise FileNotFoundError("no earlier run is visible")
    return torch.export.load(earlier).module()


if __name__ == "__main__":
    evaluate.run(train)
"""

BORROWS_THROUGH_A_SUBPROCESS = """
import evaluate


def train(ctx):
    import subprocess, torch
    subprocess.run("cp runs/*/seed1/policy.pt2 /tmp/borrowed-policy.pt2", shell=True, check=True,
                   cwd=__import__("os").environ["FORGE_ROOT"])
    earlier = torch.export.load("/tmp/borrowed-policy.pt2").state_dict
    policy = torch.nn.Linear(48, 12)
    policy.load_state_dict({k.split(".")[-1]: v for k, v in earlier.items()})
    return policy


if __name__ == "__main__":
    evaluate.run(train)
"""


@pytest.mark.parametrize("box", SANDBOXES)
def test_reading_an_earlier_run_is_refused(repo, box):
    env = _sandbox_env(box)
    commit_train(repo, RANDOM_POLICY, "a policy worth borrowing")
    assert run_cmd(repo, "train.py", "--smoke", env=env).returncode == 0
    commit_train(repo, BORROWS_IN_PROCESS, "warm start from the last run")
    p = run_cmd(repo, "train.py", "--smoke", env={**env, "FORGE_ROOT": str(repo)})
    s = summary(p.stdout)
    assert s["verdict"] == "crash", s
    assert ("earlier runs' folders are off limits" in s["reason"]) or ("no earlier run is visible" in s["reason"])


def test_a_policy_identical_to_an_earlier_runs_is_flagged(repo):
    env = {"HARNESS_SANDBOX": "none", "FORGE_ROOT": str(repo)}   # the sandbox would hide runs/ from cp
    commit_train(repo, RANDOM_POLICY, "a policy worth borrowing")
    assert run_cmd(repo, "train.py", "--smoke", env=env).returncode == 0
    commit_train(repo, BORROWS_THROUGH_A_SUBPROCESS, "copy the last policy")
    p = run_cmd(repo, "train.py", "--smoke", env=env)
    s = summary(p.stdout)
    assert "borrowed compute" in s["reason"], s
    assert rows(repo)[-1]["reason"] == s["reason"]


SLOW_STAND = STAND_STILL.replace("for i in range(3):", "import time\n    for i in range(40):\n        time.sleep(0.2)")


def test_one_experiment_per_checkout_and_no_row_is_lost(repo):
    assert run_cmd(repo, "train.py", "--smoke").returncode == 0
    commit_train(repo, SLOW_STAND, "slow")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")} | FAST_ENV
    first = subprocess.Popen([sys.executable, "train.py", "--smoke"], cwd=repo, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not list(repo.glob("runs/*/seed1/train.log")) or len(list((repo / "runs").iterdir())) < 2:
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.1)
    second = run_cmd(repo, "train.py", "--smoke")
    assert second.returncode != 0
    assert "another experiment" in second.stdout + second.stderr
    out, _ = first.communicate(timeout=180)
    assert first.returncode == 0, out
    assert len(rows(repo)) == 2


TRUNCATES_RESULTS = """
import evaluate


def train(ctx):
    import os, subprocess, torch
    subprocess.run(["sh", "-c", ": > results.tsv"], cwd=os.environ["FORGE_ROOT"])   # out of the guard's sight
""" + RETURN_STANDING_POLICY


def test_rows_removed_by_a_worker_are_restored_from_the_journal(repo):
    env = {"HARNESS_SANDBOX": "none", "FORGE_ROOT": str(repo)}
    assert run_cmd(repo, "train.py", "--smoke", env=env).returncode == 0
    first = rows(repo)[0]["run_id"]
    commit_train(repo, TRUNCATES_RESULTS, "truncate results.tsv")
    p = run_cmd(repo, "train.py", "--smoke", env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    ids = [r["run_id"] for r in rows(repo)]
    assert ids == [first, summary(p.stdout)["run_id"]]
    assert "results.tsv" in summary(p.stdout)["reason"]


def test_journal_flags_foreign_rows_and_lists_missing_ones(tmp_path):
    repo = make_repo(tmp_path / "r")
    path = journal.journal_path(repo)
    journal.record_row(path, "a\tb")
    journal.record_row(path, "c\td")
    check = journal.check_rows(path, ["a\tb", "x\ty"])
    assert check.foreign == [1] and check.missing == ["c\td"]
    journal.record_incumbent(path, BRANCH, "abc")
    assert journal.incumbent(path, BRANCH) == (True, "abc") and journal.incumbent(path, "other") == (False, None)


# Each way one run could hand a later one its weights outside the seed folder: write(name, marker)
# leaves the marker there, read(name, marker) says whether it is there, clean(name) removes it.
CHANNELS = r'''
import ctypes, os, platform, socket
from pathlib import Path

_libc = ctypes.CDLL(None, use_errno=True)
_rt = ctypes.CDLL("librt.so.1", use_errno=True)
_KEYS = {"x86_64": (248, 250), "aarch64": (217, 219)}.get(platform.machine(), (-1, -1))  # add_key, keyctl
_libc.shmat.restype = ctypes.c_void_p
_libc.syscall.restype = ctypes.c_long


def _path(where, name):
    return Path(os.path.expanduser(where)) / f"{name}.weights"


def _shm_key(name):
    return int(name[-7:], 16)


def _sock(addr, marker=None):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(2)
        s.connect("\0" + addr[1:] if addr.startswith("@") else addr)   # @: an abstract address
        held = s.makefile("rb").readline().strip().decode()
        if marker is not None:
            s.sendall(marker.encode())
        return held


def _key_search(ring, name):
    return _libc.syscall(_KEYS[1], 10, ctypes.c_long(ring), b"user", name.encode(), 0)  # KEYCTL_SEARCH


def write(channel, name, marker):
    kind, _, where = channel.partition(":")
    if kind == "file":
        _path(where, name).write_text(marker)
    elif kind == "sysv_shm":
        i = _libc.shmget(_shm_key(name), 4096, 0o1000 | 0o600)                 # IPC_CREAT
        assert i >= 0, os.strerror(ctypes.get_errno())
        ctypes.memmove(_libc.shmat(i, None, 0), marker.encode(), len(marker))
    elif kind == "mqueue":
        q = _rt.mq_open(f"/{name}".encode(), os.O_CREAT | os.O_RDWR, 0o600, None)
        assert q >= 0 and _rt.mq_send(q, marker.encode(), len(marker), 0) == 0, os.strerror(ctypes.get_errno())
    elif kind == "keyring":
        assert _libc.syscall(_KEYS[0], b"user", name.encode(), marker.encode(), len(marker),
                             ctypes.c_long(int(where))) > 0, os.strerror(ctypes.get_errno())
    elif kind == "kmsg":
        Path("/dev/kmsg").write_text(f"{marker}\n")
    elif kind == "socket":
        _sock(os.environ[where], marker)


def read(channel, name, marker):
    kind, _, where = channel.partition(":")
    if kind == "file":
        return _path(where, name).read_text() == marker
    if kind == "sysv_shm":
        i = _libc.shmget(_shm_key(name), 0, 0)
        return i >= 0 and ctypes.string_at(_libc.shmat(i, None, 0o10000), len(marker)) == marker.encode()
    if kind == "mqueue":
        q, buf = _rt.mq_open(f"/{name}".encode(), os.O_RDONLY | os.O_NONBLOCK), ctypes.create_string_buffer(1 << 16)
        return q >= 0 and _rt.mq_receive(q, buf, len(buf), None) > 0 and buf.value == marker.encode()
    if kind == "keyring":
        buf, k = ctypes.create_string_buffer(256), _key_search(int(where), name)
        return k > 0 and _libc.syscall(_KEYS[1], 11, ctypes.c_long(k), buf, 256) > 0 and buf.value == marker.encode()
    if kind == "kmsg":
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
        try:
            while True:
                try:
                    if marker.encode() in os.read(fd, 8192):
                        return True
                except BrokenPipeError:  # records overwritten meanwhile
                    continue
        except BlockingIOError:
            return False
        finally:
            os.close(fd)
    if kind == "socket":
        return _sock(os.environ[where]) == marker
    raise ValueError(channel)


def clean(channel, name):
    kind, _, where = channel.partition(":")
    if kind == "file":
        _path(where, name).unlink(missing_ok=True)
    elif kind == "sysv_shm" and _libc.shmget(_shm_key(name), 0, 0) >= 0:
        _libc.shmctl(_libc.shmget(_shm_key(name), 0, 0), 0, None)             # IPC_RMID
    elif kind == "mqueue":
        _rt.mq_unlink(f"/{name}".encode())
    elif kind == "keyring" and _key_search(int(where), name) > 0:
        _libc.syscall(_KEYS[1], 9, ctypes.c_long(_key_search(int(where), name)), ctypes.c_long(int(where)))  # UNLINK
'''

# channel -> what lives there; "socket:" channels name the environment variable holding the address
LEAK_CHANNELS = ["file:/dev/shm", "file:/tmp", "file:/var/tmp", "file:~/.cache", "sysv_shm", "mqueue",
                 "keyring:-4", "keyring:-3", "kmsg", "socket:LEAK_ABSTRACT", "socket:LEAK_RUN"]

LEAKS = "import evaluate\n" + CHANNELS + """

def train(ctx):
    import torch
    name, marker = os.environ["LEAK_NAME"], "weights of " + os.environ["LEAK_NAME"]
    caps = Path("/proc/self/status").read_text().split("CapEff:")[1].split()[0]
    print(f"leak-{int(caps, 16):x}: capabilities", flush=True)   # what could undo the read-only binds
    for channel in os.environ["LEAK_CHANNELS"].split():
        try:
            print("leak-seen:" if read(channel, name, marker) else "leak-unseen:", channel, flush=True)
        except Exception as e:
            print("leak-unseen:", channel, type(e).__name__, e, flush=True)
    env = ctx.make_env(num_envs=2)
    env.reset()
    env.step(torch.zeros(2, 12))
    for channel in os.environ["LEAK_CHANNELS"].split():   # save the weights for the next run
        try:
            write(channel, name, marker)
        except Exception as e:
            print("leak-refused:", channel, type(e).__name__, e, flush=True)
""" + RETURN_STANDING_POLICY


@pytest.fixture
def keeper(tmp_path):
    """A long-running daemon that hands each client what the previous one left (as ssh-agent, tmux or a
    D-Bus service could), on an abstract socket and on a socket file under /run (or $XDG_RUNTIME_DIR)."""
    run_dir = Path(os.environ.get("XDG_RUNTIME_DIR") or "/run")
    addrs = {"LEAK_ABSTRACT": f"@autoresearch-{tmp_path.name}-{os.getpid()}"}
    if os.access(run_dir, os.W_OK):
        addrs["LEAK_RUN"] = str(run_dir / f"autoresearch-{os.getpid()}-{tmp_path.name}.sock")
    held, stop, servers = [b""], threading.Event(), []
    for addr in addrs.values():
        s = socket.socket(socket.AF_UNIX)
        s.bind("\0" + addr[1:] if addr.startswith("@") else addr)
        s.listen()
        s.settimeout(0.2)
        servers.append(s)

    def serve(s):
        while not stop.is_set():
            try:
                conn, _ = s.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                conn.sendall(held[0] + b"\n")
                data = b"".join(iter(lambda: conn.recv(4096), b""))
                held[0] = data or held[0]

    threads = [threading.Thread(target=serve, args=(s,), daemon=True) for s in servers]
    for t in threads:
        t.start()
    yield addrs
    stop.set()
    for t, s in zip(threads, servers):
        t.join()
        s.close()
    if "LEAK_RUN" in addrs:
        Path(addrs["LEAK_RUN"]).unlink(missing_ok=True)


def _leak_report(repo, stdout: str) -> dict[str, str]:
    log = (repo / "runs" / summary(stdout)["run_id"] / "seed1" / "train.log").read_text()
    return {line.split()[1]: line.split(":")[0] for line in log.splitlines()
            if line.startswith("leak-") and not line.startswith("leak-refused")}   # what run 2 found, not wrote


@pytest.mark.parametrize("box", SANDBOXES)
def test_weights_left_outside_the_seed_folder_never_reach_the_next_run_unseen(repo, keeper, box):
    name = f"autoresearch-leak-{uuid.uuid4().hex[:7]}"
    channels = [c for c in LEAK_CHANNELS if not c.startswith("socket:") or c.split(":")[1] in keeper]
    env = {**_sandbox_env(box), **keeper, "LEAK_NAME": name, "LEAK_CHANNELS": " ".join(channels)}
    ns: dict = {}
    exec(CHANNELS, ns)
    commit_train(repo, LEAKS, "save the weights outside the seed folder, load them next time")
    try:
        first = run_cmd(repo, "train.py", "--smoke", env=env)
        second = run_cmd(repo, "train.py", "--smoke", env=env)
    finally:
        for channel in channels:
            try:
                ns["clean"](channel, name)
            except OSError:
                pass
    assert first.returncode == 0 and second.returncode == 0, first.stdout + second.stdout
    seen = _leak_report(repo, second.stdout)
    caps = seen.pop("capabilities")
    assert set(seen) == set(channels), seen                   # every channel was tried
    reasons = [summary(p.stdout)["reason"] for p in (first, second)]
    read_back = [f"{c}: the second run read the first run's weights" for c in channels if seen[c] == "leak-seen"]
    if box == "bwrap":                                        # prevented: nothing of run 1 is there
        held = [f"capabilities: the sandboxed worker holds {caps[5:]} (a remount undoes read-only)"] * (caps != "leak-0")
        assert not read_back + held, "\n".join(read_back + held)
    else:                                                     # no sandbox: detected and never kept ...
        for channel, what in (("file:/dev/shm", f"/dev/shm/{name}.weights"), ("sysv_shm", "SysV shm")):
            assert seen[channel] == "leak-seen", f"{channel}: the fixture failed to use it"
            for which, reason in zip(("first", "second"), reasons):
                assert what in reason, f"{channel}: the {which} run was not flagged: {reason}"
        refused = ("mqueue", "keyring:-4", "keyring:-3")          # ... or refused in every worker
        assert not [r for r in read_back if r.startswith(refused)], "\n".join(read_back)
