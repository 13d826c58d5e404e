"""What train.py must not change, read or do, checked around every seed; the one-experiment lock.

- Before training: train.py may have nothing but a docstring and imports of installed packages
  above its `import evaluate` (what is above runs in the launcher, before the harness takes over).
- Around each seed (training and scoring): a file watch (harness.filewatch) over the harness,
  results.tsv, earlier runs and the Python environment, plus HEAD and the incumbent ref by value.
  A changed harness file makes the run harness=modified; any other change is a flag. A flagged
  run is never kept (harness.verdict.resolve_status).
- Around each bare seed (no sandbox): /dev/shm, /dev/mqueue and SysV IPC (harness.ipcwatch), where
  a run could leave its weights for the next one; any change there is a flag.
- After scoring: a policy bit-identical to an earlier run's from a different train.py is
  borrowed compute.
- At every start: results.tsv and the incumbent ref are reconciled with harness.journal.
"""

from __future__ import annotations

import ast
import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path

from harness import filewatch, gitops, ipcwatch, journal, results
from harness.runs import RESULTS_FILE, RUNS_DIR

HARNESS_CHANGED = "harness files changed during the run"
SHARED_CHANGED = "shared memory or IPC objects changed during the run (another run could read them)"
LOCK_NAME = "experiment.lock"
OVERRUN_SHARE = 0.1          # a run past its budget by this share (>= OVERRUN_MIN_S; export included) is flagged
OVERRUN_MIN_S = 5.0


def harness_reasons(dirty: list[str], differs: bool, inc_short: str, whose: str = "harness") -> list[str]:
    """Why the harness of this run is not the incumbent's: uncommitted harness files, or a different commit."""
    reasons = ["uncommitted harness changes: " + ",".join(dirty)] if dirty else []
    if differs:
        reasons.append(f"{whose} differs from the incumbent {inc_short}'s")
    return reasons


def harness_ok(reasons: list[str], flags: list[str]) -> bool:
    """The harness that scored this run is the incumbent's, unchanged during training and scoring."""
    return not reasons and not any(f.startswith(HARNESS_CHANGED) for f in flags)


def code_before_evaluate(source: str, root: Path) -> str | None:
    """What in train.py would run before its `import evaluate` hands over to the harness, or None."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None  # the worker reports it, with the line
    for i, node in enumerate(tree.body):
        if i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the docstring
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            return f"line {node.lineno} ({type(node).__name__}) runs before `import evaluate`"
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        if "evaluate" in names:
            return None
        tops = [n.split(".")[0] for n in names]
        local = [n for n, top in zip(names, tops) if top and top != "harness"
                 and ((root / f"{top}.py").exists() or (root / top).is_dir())]
        if isinstance(node, ast.ImportFrom) and node.level:
            local.append("." * node.level + (node.module or ""))
        if local:
            return f"line {node.lineno} imports {', '.join(local)} from the repository before `import evaluate`"
    return "train.py never imports evaluate"


def _describe(paths: list[str], root: Path) -> str:
    shown = [os.path.relpath(p, root) if p.startswith(str(root)) else p for p in paths[:6]]
    return ",".join(shown) + (f" (+{len(paths) - 6} more)" if len(paths) > 6 else "")


class Guard:
    """Checks around every seed of one experiment; its flags keep the experiment from being kept."""

    def __init__(self, root: Path, branch: str, watch_ipc: bool = False):
        self.root = root.resolve()
        self.branch = branch
        self.watch_ipc = watch_ipc   # bare runs only: a sandboxed one has its own /dev/shm and IPC
        self.flags: list[str] = []
        self.roots = filewatch.watched_roots(self.root)
        self.skip = filewatch.unused_by_this_interpreter()
        self.journal = journal.journal_path(self.root)
        self.git_state = self._git_state()

    def _git_state(self) -> tuple[str, str | None]:
        return gitops.head(self.root), gitops.resolve(self.root, gitops.INCUMBENT_REF + self.branch)

    def snapshot(self, seed_dir: Path) -> tuple[filewatch.Snapshot, ipcwatch.Snapshot]:
        """The watched files (its own seed folder is its to write) and shared objects before a seed trains."""
        return (filewatch.snapshot(self.roots, skip=[*self.skip, seed_dir]),
                ipcwatch.snapshot() if self.watch_ipc else {})

    def check(self, before: tuple[filewatch.Snapshot, ipcwatch.Snapshot], seed_dir: Path) -> list[str]:
        """After a seed was trained and scored: what changed that train.py must not change."""
        flags = []
        changed = filewatch.changes(before[0], filewatch.snapshot(self.roots, skip=[*self.skip, seed_dir]))
        harness = [p for p in changed if p == str(self.root / "evaluate.py") or p.startswith(str(self.root / "harness") + os.sep)]
        record = [p for p in changed if p == str(self.root / RESULTS_FILE)]
        others = [p for p in changed if p not in harness and p not in record]
        if harness:
            flags.append(f"{HARNESS_CHANGED}: {_describe(harness, self.root)}")
        if record:
            restored = results.restore_journaled(self.root / RESULTS_FILE, self.journal)
            flags.append("results.tsv changed during the run" + (f" ({restored} harness rows restored)" if restored else ""))
        if others:
            flags.append(f"files outside the seed folder changed during the run: {_describe(others, self.root)}")
        shared = filewatch.changes(before[1], ipcwatch.snapshot()) if self.watch_ipc else []
        if shared:
            flags.append(f"{SHARED_CHANGED}: {_describe(shared, self.root)}")
        head, ref = self._git_state()
        if ref != self.git_state[1]:
            gitops.restore_ref(self.root, gitops.INCUMBENT_REF + self.branch, self.git_state[1])
            flags.append("the incumbent ref moved during the run (restored)")
        if head != self.git_state[0]:
            # the next idea committed on top while this one runs is fine; anything else is not
            if not gitops.is_ancestor(self.root, self.git_state[0], head) or \
                    gitops.harness_differs(self.root, self.git_state[0], head):
                flags.append(f"HEAD moved during the run ({self.git_state[0][:7]} -> {head[:7]})")
            self.git_state = (head, self.git_state[1])
        self.flags += flags
        return flags

    def check_sources(self, run_dir: Path, sources: dict[str, bytes]) -> list[str]:
        """The run folder's train.py copies, byte for byte (side by side, the snapshot cannot watch them)."""
        changed = [rel for rel, data in sources.items() if (run_dir / rel).read_bytes() != data]
        flags = [f"the run folder's {', '.join(changed)} changed during the run"] if changed else []
        self.flags += flags
        return flags

    def check_budget(self, train_s: float | None, budget_s: float) -> list[str]:
        """Flag a run that the supervisor saw train (import and export included) well past its budget."""
        if train_s is None or train_s <= budget_s + max(OVERRUN_MIN_S, OVERRUN_SHARE * budget_s):
            return []
        flag = f"trained {train_s - budget_s:.0f} s past the budget"
        self.flags.append(flag)
        return [flag]

    def check_borrowed(self, metrics: dict, seed_dir: Path, train_bytes: bytes) -> list[str]:
        """Flag a policy identical to an earlier run's that came from a different train.py."""
        digest = metrics.get("policy_sha256")
        if not digest:
            return []
        for other in sorted((self.root / RUNS_DIR).glob("*/**/metrics.json")):
            if other.parent == seed_dir:
                continue
            try:
                same = json.loads(other.read_text()).get("policy_sha256") == digest
            except (OSError, ValueError):
                continue
            source = next((p / "train.py" for p in other.parents if (p / "train.py").is_file()), None)
            if same and (source is None or source.read_bytes() != train_bytes):
                flag = f"borrowed compute: the policy is identical to {os.path.relpath(other.parent, self.root)}'s"
                self.flags.append(flag)
                return [flag]
        return []


def trusted_rows(root: Path, rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """(rows the harness wrote, rows it did not) of results.tsv, by the journal; without one, all are trusted."""
    path = journal.journal_path(root)
    if not path.exists():
        return rows, []
    foreign = set(journal.check_rows(path, [results.row_line(r) for r in rows]).foreign)
    return [r for i, r in enumerate(rows) if i not in foreign], [r for i, r in enumerate(rows) if i in foreign]


def set_incumbent(root: Path, branch: str, sha: str) -> None:
    """Move the incumbent ref, and journal it so a move behind the harness's back is noticed."""
    journal.record_incumbent(journal.journal_path(root), branch, sha)
    gitops.set_incumbent(root, branch, sha)


def reconcile(root: Path, branch: str, display) -> list[dict]:
    """At every start: results.tsv and the incumbent ref against the journal. Returns the trusted rows."""
    path, jpath = root / RESULTS_FILE, journal.journal_path(root)
    rows = results.read_results(path)
    if journal.adopt(jpath, [results.row_line(r) for r in rows]) and rows:
        display.line(f"journal started in {jpath.parent}: the {len(rows)} existing rows of {RESULTS_FILE} are trusted")
    restored = results.restore_journaled(path, jpath)
    if restored:
        display.line(f"integrity: {restored} row(s) the harness wrote were missing from {RESULTS_FILE}; put back")
    trusted, foreign = trusted_rows(root, results.read_results(path))
    if foreign:
        display.line(f"integrity: {len(foreign)} row(s) of {RESULTS_FILE} were not written by the harness "
                     f"({', '.join(r['run_id'] for r in foreign[:5])}): never used as scores or as best")
    known, commit = journal.incumbent(jpath, branch)
    actual = gitops.resolve(root, gitops.INCUMBENT_REF + branch)
    if not known and actual:
        journal.record_incumbent(jpath, branch, actual)
    elif known and actual != commit:
        gitops.restore_ref(root, gitops.INCUMBENT_REF + branch, commit)
        display.line(f"integrity: the incumbent ref of {branch} was moved outside the harness; restored to "
                     f"{(commit or 'none')[:7]}")
    return trusted


@contextmanager
def checkout_lock(root: Path, what: str):
    """One experiment (or floor, or apply) per checkout at a time; the lock file says who holds it."""
    gitops.check_repo(root)  # the lock lives in the git directory: say so plainly when there is none
    path = journal.journal_path(root).parent / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "unknown"
            raise LockedError(f"another experiment is running in this checkout ({holder}); wait for it to "
                              "finish, or stop it, then run again") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{what}, pid {os.getpid()}".encode(), 0)
        yield
    finally:
        os.close(fd)


class LockedError(RuntimeError):
    pass
