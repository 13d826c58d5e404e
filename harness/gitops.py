"""Git operations the harness needs, each with a clear message when the repo is not as expected.

The incumbent (the last kept commit of a branch) lives in the ref
refs/autoresearch/incumbent/<branch>, which `git reset --hard` never moves.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

HARNESS_PATHS = ("evaluate.py", "harness")
TRAIN_FILE = "train.py"
INCUMBENT_REF = "refs/autoresearch/incumbent/"


class GitError(RuntimeError):
    """The repository is not in a state an experiment can run from; the message says what to do."""


def git(root, *args: str, check: bool = True) -> str:
    try:
        p = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    except FileNotFoundError:
        raise GitError("git is not installed; install git and run again") from None
    if check and p.returncode != 0:
        raise GitError(f"git {' '.join(args)} failed: {p.stderr.strip() or p.stdout.strip()}")
    return p.stdout.strip()


def check_repo(root) -> None:
    root = Path(root).resolve()
    p = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True, text=True)
    if p.returncode != 0:
        raise GitError(
            f"{root} is not a git repository. The loop keeps or reverts commits, so it needs one: "
            "git init && git add -A && git commit -m baseline"
        )
    if Path(p.stdout.strip()).resolve() != root:
        raise GitError(f"evaluate.py must sit at the top of its git repository ({p.stdout.strip()}), not in {root}")
    if subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=root, capture_output=True).returncode:
        raise GitError("the repository has no commit yet; commit train.py first: git add -A && git commit -m baseline")


def branch(root) -> str:
    name = git(root, "symbolic-ref", "--short", "-q", "HEAD", check=False)
    if not name:
        raise GitError(
            "HEAD is detached; experiments run on a branch so that kept commits have a home. "
            "Create one: git checkout -b autoresearch/<tag>"
        )
    return name


def head(root) -> str:
    return git(root, "rev-parse", "HEAD")


def short(root, rev: str) -> str:
    return git(root, "rev-parse", "--short=7", rev)


def resolve(root, rev: str) -> str | None:
    out = git(root, "rev-parse", "--verify", "-q", rev + "^{commit}", check=False)
    return out or None


def subject(root, rev: str) -> str:
    return git(root, "log", "-1", "--format=%s", rev)


def show(root, rev: str, path: str) -> bytes:
    p = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=root, capture_output=True)
    if p.returncode != 0:
        raise GitError(f"cannot read {path} at {rev}: {p.stderr.decode(errors='replace').strip()}")
    return p.stdout


def is_harness(path: str) -> bool:
    return path == "evaluate.py" or path.startswith("harness/")


def dirty_paths(root) -> list[tuple[str, str]]:
    """(status, path) of modified tracked files, plus untracked files in the harness."""
    out = subprocess.run(
        ["git", "status", "--porcelain=v1", "-z", "--untracked-files=all"], cwd=root, capture_output=True, text=True
    ).stdout
    items, entries = [], out.split("\0")
    i = 0
    while i < len(entries):
        e = entries[i]
        i += 1
        if not e:
            continue
        code, path = e[:2], e[3:]
        if code[0] in "RC":
            i += 1  # the rename's source path follows
        if code == "??" and not is_harness(path):
            continue
        items.append((code, path))
    return items


def check_tree(root, train_file: str = TRAIN_FILE) -> list[str]:
    """Raise GitError for a tree an experiment cannot start from; return dirty harness paths."""
    harness, other = [], []
    for code, path in dirty_paths(root):
        (harness if is_harness(path) else other).append(path)
    if train_file in other:
        raise GitError(
            f"{train_file} has uncommitted changes. The candidate is HEAD's {train_file}: "
            f"commit it first (git commit -am '<what you tried>') and run again"
        )
    if other:
        raise GitError(
            "the tree has uncommitted changes outside train.py: " + ", ".join(other)
            + ". Only train.py is part of an experiment; commit or revert these (git checkout -- <file>) first"
        )
    return harness


def harness_differs(root, a: str, b: str) -> bool:
    """Whether evaluate.py or harness/ differ between two commits."""
    return subprocess.run(["git", "diff", "--quiet", a, b, "--", *HARNESS_PATHS], cwd=root).returncode != 0


def harness_hashes(root) -> dict[str, str]:
    """sha256 of every harness file in the working tree (bytecode caches excluded)."""
    root = Path(root)
    files = [root / "evaluate.py"] + sorted((root / "harness").rglob("*"))
    out = {}
    for f in files:
        if f.is_file() and "__pycache__" not in f.parts and f.suffix != ".pyc":
            out[str(f.relative_to(root))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def is_ancestor(root, a: str, b: str) -> bool:
    return subprocess.run(["git", "merge-base", "--is-ancestor", a, b], cwd=root).returncode == 0


def incumbent(root, branch_name: str) -> str | None:
    """The full hash of the branch's incumbent, if it is still an ancestor of HEAD."""
    sha = resolve(root, INCUMBENT_REF + branch_name)
    if sha is None or not is_ancestor(root, sha, "HEAD"):
        return None
    return sha


def set_incumbent(root, branch_name: str, sha: str) -> None:
    git(root, "update-ref", INCUMBENT_REF + branch_name, sha)


def _task_key(branch_name: str) -> str:
    return f"branch.{branch_name}.autoresearch-task"


def branch_task(root, branch_name: str) -> str | None:
    """The task the branch's first real run chose (git config), or None."""
    return git(root, "config", "--get", _task_key(branch_name), check=False) or None


def set_branch_task(root, branch_name: str, task: str) -> None:
    git(root, "config", _task_key(branch_name), task)


def restore_ref(root, ref: str, sha: str | None) -> None:
    if sha is None:
        git(root, "update-ref", "-d", ref, check=False)
    else:
        git(root, "update-ref", ref, sha)


def reset_hard(root, sha: str) -> None:
    git(root, "reset", "--hard", sha)


def rebase_onto(root, onto: str, upstream: str) -> str | None:
    """Move the commits after `upstream` onto `onto` (git rebase --onto): None, or git's complaint, the
    branch left as it was."""
    p = subprocess.run(["git", "rebase", "--onto", onto, upstream], cwd=root, capture_output=True, text=True)
    if p.returncode == 0:
        return None
    git(root, "rebase", "--abort", check=False)
    return " ".join((p.stderr or p.stdout).split())[:200]
