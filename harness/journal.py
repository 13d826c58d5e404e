"""The harness's own record of what it wrote: every results.tsv row and every incumbent move.

It lives in the git directory (`.git/autoresearch/journal.jsonl`), outside the working tree,
where neither the loop's `git reset --hard` nor a sandboxed worker can reach it. results.tsv is
what people read; the journal is how the harness tells its own rows from rows that something
else appended (never used as an incumbent score, never shown as best), puts back rows that
went missing, and notices an incumbent ref that moved behind its back.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

NAME = "journal.jsonl"


def journal_path(root: Path) -> Path:
    git_dir = subprocess.run(["git", "rev-parse", "--absolute-git-dir"], cwd=root, capture_output=True,
                             text=True, check=True).stdout.strip()
    return Path(git_dir) / "autoresearch" / NAME


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _append(path: Path, entries: list[dict]) -> None:
    data = "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries).encode()
    with _locked(path) as fd:
        os.write(fd, data)
        os.fsync(fd)


def read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a torn last line from a crash: the row it carried is re-journaled by adopt()
        if isinstance(entry, dict):
            out.append(entry)
    return out


def record_row(path: Path, line: str) -> None:
    """Journal a results.tsv line (call before appending it to results.tsv)."""
    _append(path, [{"row": line}])


def record_incumbent(path: Path, branch: str, commit: str | None) -> None:
    _append(path, [{"incumbent": branch, "commit": commit}])


def adopt(path: Path, lines: list[str]) -> bool:
    """Start a journal for a results.tsv written before journals existed: trust its rows once."""
    if path.exists():
        return False
    _append(path, [{"started": True}] + [{"row": line} for line in lines])
    return True


@dataclass
class Check:
    foreign: list[int] = field(default_factory=list)   # indexes of rows the harness did not write
    missing: list[str] = field(default_factory=list)   # harness rows absent from results.tsv

    def ok(self) -> bool:
        return not self.foreign and not self.missing


def check_rows(path: Path, lines: list[str]) -> Check:
    """Compare results.tsv's data lines (without the header) with the journal."""
    journaled = [e["row"] for e in read(path) if "row" in e]
    known = set(journaled)
    present = set(lines)
    return Check(foreign=[i for i, line in enumerate(lines) if line not in known],
                 missing=[line for line in dict.fromkeys(journaled) if line not in present])


def incumbent(path: Path, branch: str) -> tuple[bool, str | None]:
    """(known, commit): the last incumbent the harness recorded for branch."""
    known, commit = False, None
    for e in read(path):
        if e.get("incumbent") == branch:
            known, commit = True, e.get("commit")
    return known, commit

