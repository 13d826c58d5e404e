"""Shared helpers: throwaway git repos holding the harness and a fixture train.py, run as real processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent

# Test-only knobs: fast timeouts and a tiny panel. Every run using them is marked smoke.
FAST_ENV = {
    "HARNESS_PANEL_EPISODES": "2",
    "HARNESS_EVAL_STEPS": "40",
    "HARNESS_HANG_TIMEOUT_S": "4",
    "HARNESS_OVERRUN_MARGIN_S": "2",
    "HARNESS_STARTUP_TIMEOUT_S": "120",
}

# The end of a fixture train.py: return a policy that stands still (zero actions hold the
# default pose) and hand over to the harness.
RETURN_STANDING_POLICY = """
    policy = torch.nn.Linear(48, 12)
    torch.nn.init.zeros_(policy.weight)
    torch.nn.init.zeros_(policy.bias)
    return policy


if __name__ == "__main__":
    evaluate.run(train)
"""

STAND_STILL = """
import evaluate


def train(ctx):
    import torch  # here, not at the top: the process that runs `python train.py` then stays light

    env = ctx.make_env(num_envs=2)
    env.reset()
    for i in range(3):
        env.step(torch.zeros(2, 12))
        ctx.log(2 * (i + 1), reward=0.0, vel_err=0.5)
""" + RETURN_STANDING_POLICY


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def make_repo(path: Path, train_source: str = STAND_STILL, branch: str = "autoresearch/test") -> Path:
    """A git repo with evaluate.py, harness/, pyproject.toml, .gitignore and train.py, all committed."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy2(PROJECT / "evaluate.py", path / "evaluate.py")
    shutil.copytree(PROJECT / "harness", path / "harness", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", ".gitignore"):
        shutil.copy2(PROJECT / name, path / name)
    (path / "train.py").write_text(textwrap.dedent(train_source))
    git(path, "init", "-q", "-b", branch)
    git(path, "config", "user.email", "test@example.com")
    git(path, "config", "user.name", "test")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "baseline")
    return path


def commit_train(repo: Path, source: str, message: str) -> str:
    (repo / "train.py").write_text(textwrap.dedent(source))
    git(repo, "commit", "-q", "-am", message)
    return git(repo, "rev-parse", "--short=7", "HEAD")


def run_cmd(repo: Path, *args: str, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run `python <args>` in repo as a user would (uv run's interpreter), with the fast test knobs."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")}
    full_env.update(FAST_ENV)
    full_env.update(env or {})
    return subprocess.run([sys.executable, *args], cwd=repo, env=full_env, capture_output=True, text=True,
                          timeout=timeout)


def summary(stdout: str) -> dict[str, str]:
    """The key: value pairs after the last '---' line."""
    lines = stdout.splitlines()
    if "---" not in lines:
        return {}
    start = len(lines) - 1 - lines[::-1].index("---")
    out = {}
    for line in lines[start + 1:]:
        key, sep, value = line.partition(":")
        if sep and not line.startswith(" "):
            out[key.strip()] = value.strip()
    return out


def rows(repo: Path) -> list[dict[str, str]]:
    from harness.results import read_results

    return read_results(repo / "results.tsv")


@pytest.fixture
def repo(tmp_path) -> Path:
    return make_repo(tmp_path / "repo")
