"""End to end: `python train.py` in throwaway repos, real workers, real MuJoCo evaluation, real git.

Every run here uses the test-only knobs (tiny panel, short timeouts), so every run is smoke;
crashes are still crash rows. Fixture train.py files import torch inside train() so the
process that runs `python train.py` stays light.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys

import pytest

from conftest import RETURN_STANDING_POLICY, STAND_STILL, commit_train, git, make_repo, rows, run_cmd, summary
from harness import config, gitops, settings, verdict
from harness.verdict import Decision

SYNTAX_ERROR = """
import evaluate
def train(ctx)
    return None
if __name__ == "__main__":
    evaluate.run(train)
"""

RAISES = """
import evaluate
def train(ctx):
    raise RuntimeError("reward went sideways")
if __name__ == "__main__":
    evaluate.run(train)
"""

WRONG_OBJECT = """
import evaluate
def train(ctx):
    return {"weights": [1, 2, 3]}
if __name__ == "__main__":
    evaluate.run(train)
"""

NAN_POLICY = """
import evaluate
def train(ctx):
    import torch
    policy = torch.nn.Linear(48, 12)
    torch.nn.init.constant_(policy.bias, float("nan"))
    return policy
if __name__ == "__main__":
    evaluate.run(train)
"""

SLEEPS_FOREVER = """
import time
import evaluate
def train(ctx):
    ctx.log(0, reward=0.0)
    time.sleep(100000)
if __name__ == "__main__":
    evaluate.run(train)
"""

IGNORES_DEADLINE = """
import time
import evaluate
def train(ctx):
    while True:          # never looks at ctx.time_up()
        ctx.log(0, reward=0.0)
        time.sleep(0.2)
if __name__ == "__main__":
    evaluate.run(train)
"""

FAULTS = [
    (SYNTAX_ERROR, [], r"^exception: SyntaxError"),
    (RAISES, [], r"^exception: RuntimeError: reward went sideways"),
    (WRONG_OBJECT, [], r"^bad_return: .*torch\.nn\.Module"),
    (NAN_POLICY, [], r"^nan"),
    (SLEEPS_FOREVER, [], r"^hang: no heartbeat"),
    (IGNORES_DEADLINE, ["--budget", "1"], r"^timeout"),
]


@pytest.mark.skipif(importlib.util.find_spec("isaaclab") is not None, reason="Isaac Lab is installed here")
def test_a_backend_that_cannot_run_here_stops_before_anything_is_recorded(repo):
    """Not being able to run is the machine's problem, not an experiment: exit 2, say what to
    install, and leave no row, no results.tsv and no run folder."""
    calls = [("train.py", "--backend", "isaaclab", "--smoke"), ("evaluate.py", "run", "--backend", "isaaclab"),
             ("evaluate.py", "floor", "--backend", "isaaclab")]
    if not _cuda_here():
        calls.append(("train.py", "--device", "cuda", "--smoke"))
    for args in calls:
        p = run_cmd(repo, *args)
        assert p.returncode == 2, (args, p.stdout + p.stderr)
        if "isaaclab" in args:
            for needle in ("Isaac Lab 3.0", "Python 3.12", "uv sync --project harness/isaaclab", ".venv-isaaclab"):
                assert needle in p.stdout, (args, needle, p.stdout)
        else:
            assert "--device cuda" in p.stdout and "--device cpu" in p.stdout, p.stdout
        assert "Traceback" not in p.stdout + p.stderr
        assert not (repo / "results.tsv").exists() and not (repo / "runs").exists(), args
    assert git(repo, "status", "--porcelain") == ""


def _cuda_here() -> bool:
    import torch

    return torch.cuda.is_available()


def test_stand_still_smoke_run_end_to_end(repo):
    p = run_cmd(repo, "train.py", "--smoke", env={"HARNESS_HELD_OUT": "1"})
    assert p.returncode == 0, p.stdout + p.stderr
    s = summary(p.stdout)
    assert list(s)[0] == "vel_err"
    vel, still = float(s["vel_err"]), float(s["standing_still"])
    assert abs(vel - still) < 0.15, (vel, still)          # a robot that stands scores about standing still
    assert s["verdict"] == "smoke" and s["harness"] == "ok" and s["seeds"] == "1"
    assert float(s["startup_seconds"]) > 0
    assert "  | " in p.stdout or "seed 1" in p.stdout
    assert len(re.findall(r"^vel_err:", p.stdout, flags=re.M)) == 1
    [row] = rows(repo)
    assert row["status"] == "smoke" and row["budget_s"] == "20" and row["seed_scores"] == f"1:{float(row['vel_err']):.4f}"
    assert "would be baseline" in row["reason"]
    # a would-be baseline gets the held-out check: a fresh panel under perturbations, in its own process
    assert float(row["held_out"]) > 0 and s["held_out"] == row["held_out"]
    assert float(s["held_out_gap"]) == pytest.approx(float(s["held_out"]) - vel, abs=2e-4)
    held = json.loads((repo / "runs" / row["run_id"] / "held_out.json").read_text())
    assert held["conditions"] == list(config.HELD_OUT_CONDITIONS) and held["panel_seed"] != config.PANEL_SEED
    seed_dir = repo / "runs" / row["run_id"] / "seed1"
    for name in ("policy.pt2", "metrics.json", "train.log", "curves.csv", "eval.log"):
        assert (seed_dir / name).exists(), name
    assert (repo / "runs" / row["run_id"] / "experiment.json").exists()
    assert gitops.incumbent(repo, "autoresearch/test") is None  # smoke never becomes the incumbent
    assert git(repo, "status", "--porcelain") == ""             # results.tsv and runs/ are ignored

    # re-scoring the saved policy in a fresh process gives the same number
    q = run_cmd(repo, "evaluate.py", "score", f"runs/{row['run_id']}")
    assert q.returncode == 0, q.stdout + q.stderr
    assert summary(q.stdout)["vel_err"] == row["vel_err"]


def test_faults_give_crash_rows_and_apply_resets_keeping_every_row(repo):
    base = gitops.head(repo)
    gitops.set_incumbent(repo, "autoresearch/test", base)  # as if the baseline had been kept
    for i, (source, args, pattern) in enumerate(FAULTS, start=1):
        short = commit_train(repo, source, f"fault {i}")
        # a train.py that does not parse never reaches evaluate.run(): `evaluate.py run` starts the harness itself
        entry = ["evaluate.py", "run"] if source is SYNTAX_ERROR else ["train.py"]
        p = run_cmd(repo, *entry, *args)
        assert p.returncode == 0, p.stdout + p.stderr
        row = rows(repo)[-1]
        assert row["commit"] == short and row["status"] == "crash", row
        assert re.search(pattern, row["reason"]), row["reason"]
        assert row["seed_scores"] == "1:crash" and row["vel_err"] == ""
        assert summary(p.stdout)["verdict"] == "crash"
        a = run_cmd(repo, "evaluate.py", "apply")
        assert a.returncode == 0 and "reset" in a.stdout, a.stdout + a.stderr
        assert gitops.head(repo) == base
        assert len(rows(repo)) == i                     # every row survives every reset
    assert [r["commit"] for r in rows(repo)] == [r["commit"] for r in rows(repo)]
    assert git(repo, "status", "--porcelain") == ""


CHEATS = """
import evaluate
import harness.verdict, harness.scoring, harness.results

# module-scope monkey-patching: the harness must not care
harness.verdict.decide = lambda *a, **k: "keep"
harness.scoring.evaluate_policy = lambda *a, **k: {"vel_err": 0.0}
harness.results.append_row = lambda *a, **k: None


def train(ctx):
    import os, subprocess, torch
    root = os.environ["FORGE_ROOT"]
    torch.manual_seed(0)                      # seeding itself
    print("vel_err:          0.0001")         # a fake summary line
    print("verdict:          keep")
    attempts = {
        "results.tsv": lambda: open(os.path.join(root, "results.tsv"), "a").write("fake\\trow\\n"),
        "harness": lambda: open(os.path.join(root, "harness", "verdict.py"), "a").write("\\nKEEP_FACTOR = 0.0\\n"),
        "incumbent": lambda: subprocess.run(["git", "update-ref", "refs/autoresearch/incumbent/autoresearch/test",
                                             "HEAD"], cwd=root, check=True, capture_output=True),
    }
    for name, attempt in attempts.items():
        try:
            attempt()
            print("done:", name)
        except (OSError, subprocess.CalledProcessError) as e:
            print("refused:", name, type(e).__name__)
""" + RETURN_STANDING_POLICY


@pytest.mark.parametrize("box", ["bwrap", "none"])
def test_cheating_train_py_cannot_change_score_or_verdict(tmp_path, box):
    from harness import sandbox

    if box == "bwrap" and sandbox.choose("mujoco").kind != "bwrap":
        pytest.skip(f"no bwrap sandbox on this machine: {sandbox.choose('mujoco').why}")
    repo = make_repo(tmp_path / "repo", CHEATS)
    env = {"FORGE_ROOT": str(repo), **({"HARNESS_SANDBOX": "none"} if box == "none" else {})}
    p = run_cmd(repo, "train.py", "--smoke", env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    harness_lines = re.findall(r"^vel_err:\s*(\S+)", p.stdout, flags=re.M)
    assert len(harness_lines) == 1 and float(harness_lines[0]) > 0.3      # the measured score, not 0.0001
    assert "  | vel_err:          0.0001" in p.stdout                      # the fake line is echoed, prefixed
    assert re.findall(r"^verdict:\s*(\S+)", p.stdout, flags=re.M) == ["smoke"]
    assert "refused: results.tsv PermissionError" in p.stdout or "refused: results.tsv OSError" in p.stdout
    assert "refused: harness" in p.stdout
    [row] = rows(repo)                                                    # no fake row
    assert float(row["vel_err"]) > 0.3 and row["harness"] == "ok"         # the harness file was never changed
    assert gitops.incumbent(repo, "autoresearch/test") is None            # not crowned
    if box == "none":                                                     # a subprocess got past the guard ...
        assert "done: incumbent" in p.stdout
        assert "the incumbent ref moved during the run (restored)" in row["reason"]   # ... and was caught
        assert "would be discard" in row["reason"]                        # never kept, even were it not smoke
    else:
        assert "refused: incumbent" in p.stdout                           # .git is read-only in the sandbox


def test_paired_incumbent_rerun_from_git_show(tmp_path):
    """The incumbent's score on the seed is missing, so its train.py is re-run from git into the run folder."""
    repo = make_repo(tmp_path / "repo")
    inc = gitops.head(repo)
    gitops.set_incumbent(repo, "autoresearch/test", inc)
    cand = commit_train(repo, STAND_STILL.replace("reward=0.0", "reward=1.0"), "same policy, other logging")
    (repo / "harness" / "display.py").write_text((repo / "harness" / "display.py").read_text() + "\n# local edit\n")
    p = run_cmd(repo, "train.py", "--smoke", env={"HARNESS_MAX_SEEDS": "1"})
    assert p.returncode == 0, p.stdout + p.stderr
    [row] = rows(repo)
    assert row["commit"] == cand and row["incumbent"] == inc[:7]
    assert row["delta"] == "0.0000"                 # same policy, same panel: the pair cancels exactly
    assert row["harness"] == "modified" and "uncommitted harness changes: harness/display.py" in row["reason"]
    run_dir = repo / "runs" / row["run_id"]
    inc_source = (run_dir / "incumbent" / "train.py").read_text()
    assert "reward=0.0" in inc_source and "reward=1.0" not in inc_source   # the incumbent's own train.py
    diff = (run_dir / "candidate.diff").read_text()                        # what the candidate changed, kept
    assert "-        ctx.log(2 * (i + 1), reward=0.0" in diff and "+        ctx.log(2 * (i + 1), reward=1.0" in diff

    # the noise-floor command re-runs the incumbent on a seed it has no (comparable) score for
    f = run_cmd(repo, "evaluate.py", "floor", "--seeds", "1", "--smoke")
    assert f.returncode == 0, f.stdout + f.stderr
    floor_row = rows(repo)[-1]
    assert floor_row["commit"] == inc[:7] and floor_row["status"] == "smoke" and floor_row["seeds"] == "1"
    assert floor_row["harness"] == "modified"          # display.py is still edited
    assert summary(f.stdout)["vel_err"] == floor_row["vel_err"]
    assert (run_dir / "incumbent" / "seed1" / "metrics.json").exists()


def _decision(action):
    return Decision(action, f"rule said {action}", 3, -0.1, 0.01)


@pytest.mark.parametrize("kwargs, status", [
    (dict(decision=_decision("keep")), "keep"),
    (dict(decision=_decision("keep"), never_keep=["uncommitted harness changes: harness/x.py"]), "discard"),
    (dict(decision=_decision("keep"), smoke_why=["--smoke"]), "smoke"),
    (dict(decision=None, has_incumbent=False), "baseline"),
    (dict(decision=None, has_incumbent=False, never_keep=["results.tsv changed during the run"]), "discard"),
    (dict(crash="hang: no heartbeat for 120 s", smoke_why=["--smoke"]), "crash"),
    (dict(decision=None, incumbent_failed=(2, "hang")), "discard"),
])
def test_status_resolution_never_keeps_what_it_must_not(kwargs, status):
    args = dict(crash=None, has_incumbent=True, branch="b", inc_short="abc1234", incumbent_failed=None,
                decision=None, never_keep=[], smoke_why=[])
    args.update(kwargs)
    got, reason = verdict.resolve_status(**args)
    assert got == status, reason
    if args["crash"]:
        assert reason.startswith("hang")


def test_budget_other_than_default_is_smoke(monkeypatch):
    for k in settings.TEST_OVERRIDES:
        monkeypatch.delenv(k, raising=False)

    class A:
        smoke, backend, device = False, "mujoco", "cpu"
        budget = slots = cluster = task = None

    a = A()
    s = settings.make_settings(a)
    assert not s.smoke and s.budget_s == settings.DEFAULT_BUDGET_S and s.max_seeds == verdict.MAX_SEEDS
    a.budget = 299.0
    assert settings.make_settings(a).smoke
    monkeypatch.setenv("HARNESS_PANEL_EPISODES", "2")
    a.budget = None
    assert settings.make_settings(a).smoke


def test_display_bar_on_a_terminal_plain_lines_in_a_log():
    import io

    from harness.display import Display

    tty = io.StringIO()
    d = Display(tty, tty=True)
    d.progress("seed 1", 150, 300, 123456, {"reward": 1.5, "vel_err": 0.4})
    d.echo("a line from training")
    d.summary([("vel_err", "0.3000"), ("verdict", "keep")])
    text = tty.getvalue()
    assert "\r" in text and "[" + "#" * 12 + "." * 12 + "]" in text and "123,456" in text
    assert "  | a line from training\n" in text
    assert text.endswith("---\nvel_err:          0.3000\nverdict:          keep\n")

    log = io.StringIO()
    d = Display(log, tty=False)
    for t in range(5):
        d.progress("seed 1", t, 300, t * 10, {"vel_err": 0.5})
    lines = log.getvalue().splitlines()
    assert len(lines) == 1 and "\r" not in log.getvalue()      # throttled plain lines, no bar
    assert lines[0].startswith("seed 1 0/300 s")


def test_a_run_on_a_loaded_machine_is_run_again_then_not_judged(repo):
    """Beside a busy process every run is flagged `loaded` (harness.load): it is set aside and run again,
    and after LOADED_TRIES the row is a crash that says why; apply leaves the commit alone. (A quiet run
    with the check on is judged: the floor test below.)"""
    from harness.session import LOADED_TRIES

    base = gitops.head(repo)
    gitops.set_incumbent(repo, "autoresearch/test", base)
    cand = commit_train(repo, STAND_STILL.replace("reward=0.0", "reward=2.0"), "a candidate")
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        p = run_cmd(repo, "train.py", "--smoke", env={"HARNESS_LOAD_CHECK": "1", "HARNESS_QUIET_WAIT_S": "0"})
    finally:
        hog.kill()
        hog.wait()
    assert p.returncode == 0, p.stdout + p.stderr
    assert "waiting for a quiet machine" in p.stdout and f"pid {hog.pid}" in p.stdout   # says who holds the CPUs
    assert p.stdout.count("running it again") == LOADED_TRIES - 1
    [row] = rows(repo)
    assert row["status"] == "crash" and row["reason"].startswith("loaded: other processes used"), row["reason"]
    run_dir = repo / "runs" / row["run_id"]
    assert sorted(d.name for d in run_dir.glob("seed1.loaded*")) == [f"seed1.loaded{i}" for i in range(1, LOADED_TRIES + 1)]
    a = run_cmd(repo, "evaluate.py", "apply")
    assert a.returncode == 0 and "not judged" in a.stdout, a.stdout + a.stderr
    assert gitops.head(repo).startswith(cand)                    # nothing reset: the idea waits for a quiet machine


def test_floor_measures_every_missing_seed_and_rerun_drops_a_bad_score(repo, monkeypatch):
    """`evaluate.py floor` fills seeds 1..max_seeds; --rerun K marks K's scores dropped, then runs K again.
    Runs in-process with real (short) settings that are not smoke, so the scores count."""
    import io

    from conftest import FAST_ENV
    from harness import experiment, results
    from harness.display import Display
    from harness.settings import Settings

    for k, v in FAST_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(repo)
    inc = gitops.head(repo)
    gitops.set_incumbent(repo, "autoresearch/test", inc)
    s = Settings("mujoco", "cpu", 2.0, smoke_why=[], max_seeds=2)
    assert experiment.run_floor(repo, s, None, Display(io.StringIO())) == 0
    floor = rows(repo)[-1]
    assert floor["status"] == "floor" and sorted(results.parse_seed_scores(floor["seed_scores"])) == [1, 2]
    out = io.StringIO()
    assert experiment.run_floor(repo, s, None, Display(out)) == 0
    assert "nothing to run" in out.getvalue() and len(rows(repo)) == 1
    assert experiment.run_floor(repo, s, None, Display(io.StringIO()), rerun=[2]) == 0
    drop, again = rows(repo)[-2:]
    assert drop["seed_scores"] == "2:dropped" and "dropped" in drop["reason"]
    assert list(results.parse_seed_scores(again["seed_scores"])) == [2]
    scores = verdict.incumbent_runs(rows(repo), inc[:7], "mujoco", 2.0)
    assert len(scores[1]) == 1 and scores[2] == [results.parse_seed_scores(again["seed_scores"])[2]]


WALKS_FOR_THE_BUDGET = """
import evaluate


def train(ctx):
    import torch

    env = ctx.make_env(num_envs=2)
    env.reset()
    steps = 0
    while not ctx.time_up():
        env.step(torch.zeros(2, 12))
        steps += 2
        ctx.log(steps, reward=0.0, vel_err=0.5)
""" + RETURN_STANDING_POLICY


def test_committing_the_next_idea_while_a_floor_runs_is_safe(tmp_path, monkeypatch):
    """program.md tells the agent it may commit its next idea while the floor (or a run) goes on: the floor's
    scores still count. A commit that touches the harness is still flagged."""
    import io
    import threading
    import time

    from conftest import FAST_ENV
    from harness import experiment, integrity, results
    from harness.display import Display
    from harness.settings import Settings

    repo = make_repo(tmp_path / "repo", WALKS_FOR_THE_BUDGET)
    for k, v in FAST_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(repo)
    inc = gitops.head(repo)
    gitops.set_incumbent(repo, "autoresearch/test", inc)

    def commit_when_training():
        deadline = time.monotonic() + 120
        while not list((repo / "runs").glob("*/seed1/train.log")) and time.monotonic() < deadline:
            time.sleep(0.2)
        commit_train(repo, WALKS_FOR_THE_BUDGET.replace("vel_err=0.5", "vel_err=0.4"), "the next idea")

    committer = threading.Thread(target=commit_when_training)
    committer.start()
    s = Settings("mujoco", "cpu", 4.0, smoke_why=[], max_seeds=2)
    assert experiment.run_floor(repo, s, 1, Display(io.StringIO())) == 0
    committer.join()
    floor = rows(repo)[-1]
    assert gitops.subject(repo, "HEAD") == "the next idea"
    assert floor["status"] == "floor" and floor["harness"] == "ok", floor
    assert floor["reason"] == "noise-floor re-run of the incumbent"     # no flag: the scores count
    assert list(verdict.incumbent_runs(rows(repo), inc[:7], "mujoco", 4.0)) == [1]

    guard = integrity.Guard(repo, "autoresearch/test")
    seed_dir = repo / "runs" / "x" / "seed1"
    before = guard.snapshot(seed_dir)
    (repo / "harness" / "display.py").write_text((repo / "harness" / "display.py").read_text() + "\n# edited\n")
    git(repo, "commit", "-q", "-am", "a harness change")
    assert any(f.startswith("HEAD moved during the run") for f in guard.check(before, seed_dir))
    assert results.read_results(repo / "results.tsv")[-1] == floor
