"""The harness's own record of what it wrote: every results.tsv row and every incumbent move.

It lives in the git directory (`.git/autoresearch/journal.jsonl`), outside the working tree,
where neither the loop's `git reset --hard` nor a sandboxed worker can reach it. results.tsv is
what people read; the journal is how the harness tells its own rows from rows that something
else appended (never used as an incumbent score, never shown as best), puts back rows that
went missing, and notices an incumbent ref that moved behind its back.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from harness import gitops

NAME = "journal.jsonl"


def journal_path(root: Path) -> Path:
    """Where root's journal lives (raises gitops.GitError outside a git checkout)."""
    return Path(gitops.git(root, "rev-parse", "--absolute-git-dir")) / "autoresearch" / NAME


def _append(path: Path, entries: list[dict]) -> None:
    """One O_APPEND write, fsynced: entries never interleave, and a crash leaves at most a torn last line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a torn last line from a crash: its row was journaled first, so never appended either
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


def same_line(line: str) -> str:
    """A line as lines are compared: without empty trailing cells, which an older row read back
    (padded to today's columns) has and its journaled line lacks."""
    return line.rstrip("\t")


def check_rows(path: Path, lines: list[str]) -> Check:
    """Compare results.tsv's data lines (without the header) with the journal."""
    journaled = [e["row"] for e in read(path) if "row" in e]
    known = {same_line(line) for line in journaled}
    present = {same_line(line) for line in lines}
    return Check(foreign=[i for i, line in enumerate(lines) if same_line(line) not in known],
                 missing=[line for line in dict.fromkeys(journaled) if same_line(line) not in present])


def incumbent(path: Path, branch: str) -> tuple[bool, str | None]:
    """(known, commit): the last incumbent the harness recorded for branch."""
    known, commit = False, None
    for e in read(path):
        if e.get("incumbent") == branch:
            known, commit = True, e.get("commit")
    return known, commit

