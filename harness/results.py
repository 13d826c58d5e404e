"""results.tsv: one row per experiment, never a partial row, never a lost row.

The file is untracked and git-ignored, so the loop's `git reset --hard` cannot touch it.
Appends hold an exclusive fcntl lock on results.tsv.lock, validate the existing file, then
write the row with a single os.write on an O_APPEND descriptor and fsync it.
"""

from __future__ import annotations

import fcntl
import math
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

FIRST_COLUMNS = (
    "run_id", "timestamp", "commit", "status", "vel_err", "delta", "yaw_err", "survival", "torque",
    "foot_slip", "gait", "env_steps", "train_s", "seeds", "seed_scores", "incumbent", "backend",
    "budget_s", "harness", "reason", "description",
)
# New columns only ever go at the end: an older file's header and rows are a prefix, read as they are
# (missing cells empty), and its header is upgraded in place (ensure_file) without touching a row.
COLUMNS = FIRST_COLUMNS + ("held_out", "resources", "task")
HEADER = "\t".join(COLUMNS) + "\n"
STATUSES = ("baseline", "keep", "discard", "crash", "floor", "smoke")
KEPT = ("baseline", "keep")   # the rows that made their commit the incumbent


class ResultsError(RuntimeError):
    """results.tsv cannot be read or written safely; the message names the file and line."""


def clean_field(value) -> str:
    """A value as one TSV field: None -> '', tabs and newlines -> spaces."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return " ".join(str(value).replace("\t", " ").replace("\r", " ").split("\n")).strip()


def _parse(text: str, path: Path) -> list[dict[str, str]]:
    if text == "":
        return []
    lines = text.split("\n")
    if lines[-1] != "":
        raise ResultsError(
            f"{path}:{len(lines)}: the last line has no newline (a partial row?); "
            "fix or remove that line by hand, the harness leaves the file untouched"
        )
    lines = lines[:-1]
    if not _known_header(lines[0]):
        raise ResultsError(
            f"{path}:1: unknown header; expected the columns {', '.join(COLUMNS)}. "
            "Move the file aside (it is left untouched) and the harness will start a new one"
        )
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if not len(FIRST_COLUMNS) <= len(fields) <= len(COLUMNS):
            raise ResultsError(
                f"{path}:{number}: expected {len(COLUMNS)} tab-separated fields, found {len(fields)}; "
                "fix or remove that line by hand, the harness leaves the file untouched"
            )
        row = dict(zip(COLUMNS, fields + [""] * (len(COLUMNS) - len(fields))))
        if row["status"] not in STATUSES:
            raise ResultsError(f"{path}:{number}: unknown status {row['status']!r}; expected one of {STATUSES}")
        rows.append(row)
    return rows


def _known_header(line: str) -> bool:
    """Whether a header line names COLUMNS or an older prefix of them."""
    names = tuple(line.split("\t"))
    return len(FIRST_COLUMNS) <= len(names) <= len(COLUMNS) and names == COLUMNS[:len(names)]


def read_results(path) -> list[dict[str, str]]:
    """All rows of results.tsv as dicts (an absent file has none). Raises ResultsError."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ResultsError(f"{path}:1: not UTF-8 text ({e}); the harness leaves the file untouched") from None
    return _parse(text, path)


@contextmanager
def locked(path):
    """Exclusive lock on <results>.lock for the whole read-validate-append."""
    lock_path = Path(str(path) + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def format_row(row: dict) -> str:
    unknown = sorted(set(row) - set(COLUMNS))
    if unknown:
        raise ResultsError(f"unknown results.tsv column(s) {unknown}")
    if row.get("status") not in STATUSES:
        raise ResultsError(f"status must be one of {STATUSES}, got {row.get('status')!r}")
    return "\t".join(clean_field(row.get(c)) for c in COLUMNS) + "\n"


def row_line(row: dict) -> str:
    """A row as its results.tsv line, without the newline (what harness.journal records)."""
    return format_row(row)[:-1]


def _write_lines(path: Path, lines: list[str]) -> None:
    """Append lines (each ending in a newline) with one O_APPEND write and an fsync; the header
    goes first into an empty file. The caller holds the lock and has validated the file."""
    data = ("" if path.exists() and path.stat().st_size > 0 else HEADER) + "".join(lines)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, data.encode("utf-8"))
        if written != len(data.encode("utf-8")):
            raise ResultsError(f"{path}: short write ({written} bytes); the disk may be full")
        os.fsync(fd)
    finally:
        os.close(fd)


def append_row(path, row: dict, journal_path=None) -> None:
    """Append one row atomically, creating the file with its header if needed.

    With journal_path, the row is journaled first (harness.journal), so a row of results.tsv
    that the journal lacks was not written by the harness.
    """
    path = Path(path)
    line = format_row(row)
    with locked(path):
        read_results(path)  # validates; raises before any write
        if journal_path is not None:
            from harness import journal

            journal.record_row(journal_path, line[:-1])
        _write_lines(path, [line])


def restore_journaled(path, journal_path) -> int:
    """Append the rows journal_path holds and results.tsv lacks (rows never rewritten); returns how many."""
    from harness import journal

    path = Path(path)
    with locked(path):
        present = [row_line(r) for r in read_results(path)]
        missing = journal.check_rows(journal_path, present).missing
        if missing:
            _write_lines(path, [line + "\n" for line in missing])
    return len(missing)


def ensure_file(path) -> bool:
    """Create results.tsv with its header if absent; validate it if present, and give an older file
    the current header (returns True then). Rows are never rewritten: the new file is the old one
    with only its first line replaced, swapped in with one rename."""
    path = Path(path)
    with locked(path):
        if not path.exists() or path.stat().st_size == 0:
            _write_lines(path, [])
            return False
        read_results(path)  # validates, with a clear error for a file that is not UTF-8
        first, _, rest = path.read_text(encoding="utf-8").partition("\n")
        if first + "\n" == HEADER:
            return False
        tmp = path.with_name(path.name + ".upgrade")
        tmp.write_text(HEADER + rest, encoding="utf-8")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return True


def format_seed_scores(scores: dict[int, float | None]) -> str:
    """{1: 0.2312, 2: None, 3: DROPPED} -> '1:0.2312;2:crash;3:dropped'."""
    def text(v):
        return v if v == DROPPED else "crash" if v is None else f"{v:.4f}"
    return ";".join(f"{s}:{text(v)}" for s, v in sorted(scores.items()))


DROPPED = "dropped"   # a floor row's mark: the commit's earlier scores on this seed no longer count


def parse_seed_scores(text: str) -> dict[int, float | str | None]:
    out: dict[int, float | str | None] = {}
    for part in filter(None, text.split(";")):
        seed, _, value = part.partition(":")
        try:
            out[int(seed)] = None if value == "crash" else DROPPED if value == DROPPED else float(value)
        except ValueError:
            continue
    return out


def number(text: str | None) -> float | None:
    """A finite float from a results cell, or None for an empty or non-numeric one."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def format_number(value: float | None, digits: int = 4, signed: bool = False) -> str:
    """A number for the report and the plots: fixed decimals, "-" for none."""
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def kept_rows(rows: list[dict[str, str]], scored: bool = False) -> list[dict[str, str]]:
    """The baseline and kept rows in order (with a numeric vel_err only, if scored): the incumbent's history.
    The last scored one is the incumbent, the best so far."""
    return [r for r in rows if r.get("status") in KEPT and (not scored or number(r.get("vel_err")) is not None)]


# --- building a row from an experiment's seeds --------------------------------------------------


@dataclass
class SeedResult:
    """One trained and scored seed, as the orchestrator records it (experiment.json) and aggregates it."""

    seed: int
    ok: bool
    reason: str | None
    dir: str
    metrics: dict | None = None
    startup_s: float | None = None
    train_s: float | None = None
    env_steps: int = 0
    flags: list = field(default_factory=list)
    foreign_share: float | None = None   # CPU share other processes used while it trained (harness.load)
    held_out: float | None = None        # vel_err on the held-out panel and conditions (kept candidates only)

    @property
    def vel_err(self) -> float | None:
        return self.metrics["vel_err"] if self.ok and self.metrics else None


def _mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def f4(x: float | None) -> str | None:
    return None if x is None else f"{x:.4f}"


def aggregate(seeds: list[SeedResult]) -> dict:
    """The row's figures over seeds: metric means over the scored ones, sums of steps and seconds."""
    ok = [r for r in seeds if r.ok]
    gait = sorted({f for r in ok for f in r.metrics["gait"].split(",") if f != "ok"})
    return {
        "vel_err": _mean(r.metrics["vel_err"] for r in ok),
        "yaw_err": _mean(r.metrics["yaw_err"] for r in ok),
        "survival": _mean(r.metrics["survival"] for r in ok),
        "torque": _mean(r.metrics["torque"] for r in ok),
        "foot_slip": _mean(r.metrics["foot_slip"] for r in ok),
        "standing_still": _mean(r.metrics["standing_still"] for r in ok),
        "gait": ",".join(gait) if gait else ("ok" if ok else ""),
        "env_steps": sum(r.env_steps for r in seeds),
        "train_s": sum(r.train_s or 0.0 for r in seeds),
        "startup_s": _mean(r.startup_s for r in seeds),
        "seeds": len(ok),
        "seed_scores": format_seed_scores({r.seed: r.vel_err for r in seeds}),
    }


def make_row(run_id, commit_short, status, agg, settings, harness_ok, reason, description, delta=None, incumbent="",
             held_out=None):
    """One results.tsv row (COLUMNS) from an aggregate (aggregate()) and the run's settings."""
    return {
        "run_id": run_id, "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": commit_short, "status": status, "vel_err": agg["vel_err"], "delta": f4(delta),
        "yaw_err": agg["yaw_err"], "survival": agg["survival"], "torque": agg["torque"], "foot_slip": agg["foot_slip"],
        "gait": agg["gait"], "env_steps": agg["env_steps"], "train_s": f"{agg['train_s']:.1f}", "seeds": agg["seeds"],
        "seed_scores": agg["seed_scores"], "incumbent": incumbent, "backend": settings.backend,
        "budget_s": f"{settings.budget_s:g}", "harness": "ok" if harness_ok else "modified", "reason": reason,
        "description": description, "held_out": held_out, "resources": settings.resources, "task": settings.task,
    }
