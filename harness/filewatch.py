"""What decides a score must not change while a run is trained and scored.

A snapshot records (inode change time, size) of every file under the watched folders: the
harness (evaluate.py, harness/), results.tsv, earlier runs, the virtual environment and Python's
standard library. Comparing two snapshots lists what was added, removed or changed in between.
The inode change time (ctime) moves on every write, rename, chmod or utime, and an ordinary
process cannot set it back, so a file swapped during scoring and restored afterwards still shows.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

Snapshot = dict[str, tuple[int, int]]


def watched_roots(root: Path) -> list[Path]:
    """The folders and files whose change would change a score or the record."""
    root = Path(root).resolve()
    paths = [root / "evaluate.py", root / "harness", root / "results.tsv", root / "runs", Path(sys.prefix)]
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        p = sysconfig.get_paths().get(key)
        if p:
            paths.append(Path(p))
    out: list[Path] = []
    for p in (p.resolve() for p in paths):
        if not any(p == q or q in p.parents for q in out):
            out = [q for q in out if p not in q.parents] + [p]
    return out


def unused_by_this_interpreter() -> list[Path]:
    """The base Python's own site-packages, when this interpreter is a virtual environment's."""
    if sys.prefix == sys.base_prefix:
        return []
    base = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_prefix})
    return [Path(base[k]).resolve() for k in ("purelib", "platlib") if base.get(k)]


def snapshot(roots: list[Path], skip: list[Path] = ()) -> Snapshot:
    """(ctime_ns, size) of every entry under roots, except those under skip."""
    skip_set = {str(Path(p).resolve()) for p in skip}
    out: Snapshot = {}
    stack = []
    for r in roots:
        try:
            st = os.stat(r, follow_symlinks=False)
        except OSError:
            continue
        out[str(r)] = (st.st_ctime_ns, st.st_size)
        if os.path.isdir(r) and not os.path.islink(r):
            stack.append(str(r))
    while stack:
        folder = stack.pop()
        try:
            entries = os.scandir(folder)
        except OSError:
            continue
        with entries:
            for e in entries:
                if e.path in skip_set:
                    continue
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                out[e.path] = (st.st_ctime_ns, st.st_size)
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
    return out


def changes(before: Snapshot, after: Snapshot) -> list[str]:
    """Paths added, removed or changed between two snapshots (folders whose only change is a child's are left out)."""
    changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    parents = {os.path.dirname(p) for p in changed}
    return sorted(p for p in changed if not (p in parents and p in before and p in after))
