"""What train.py must not change while it trains: results.tsv, the harness files, the git refs.

The orchestrator takes a snapshot before each seed and checks after it. A write to results.tsv
is undone (the worker's version is kept aside in the seed folder); a change to the harness
files or to HEAD is flagged; a moved incumbent ref is put back. Any flag makes the experiment
never kept (harness.verdict.resolve_status).
"""

from __future__ import annotations

import os
from pathlib import Path

from harness import gitops
from harness.runs import RESULTS_FILE

HARNESS_CHANGED = "train.py changed harness files"


def harness_reasons(dirty: list[str], differs: bool, inc_short: str, whose: str = "harness") -> list[str]:
    """Why the harness of this run is not the incumbent's: uncommitted harness files, or a different commit."""
    reasons = ["uncommitted harness changes: " + ",".join(dirty)] if dirty else []
    if differs:
        reasons.append(f"{whose} differs from the incumbent {inc_short}'s")
    return reasons


def harness_ok(reasons: list[str], flags: list[str]) -> bool:
    """The harness that scored this run is the incumbent's, unchanged during training."""
    return not reasons and not any(f.startswith(HARNESS_CHANGED) for f in flags)


class Guard:
    """Snapshots of results.tsv, the harness files and the git refs, checked after every seed."""

    def __init__(self, root: Path, branch: str):
        self.root = root
        self.branch = branch
        self.results_path = root / RESULTS_FILE
        self.flags: list[str] = []
        self.harness_hashes = gitops.harness_hashes(root)
        self.git_state = self._git_state()

    def _git_state(self) -> tuple[str, str | None]:
        return gitops.head(self.root), gitops.resolve(self.root, gitops.INCUMBENT_REF + self.branch)

    def snapshot(self) -> bytes | None:
        """results.tsv as it is before a seed trains."""
        return self.results_path.read_bytes() if self.results_path.exists() else None

    def check(self, before: bytes | None, seed_dir: Path) -> list[str]:
        """Undo a worker's write to results.tsv; flag a worker's change to the harness files or git."""
        flags = []
        after = self.snapshot()
        if after != before:
            aside = seed_dir / "results.tsv.changed-by-train"
            if after is not None:
                aside.write_bytes(after)
            if before is None:
                self.results_path.unlink(missing_ok=True)
            else:
                tmp = self.results_path.with_name(RESULTS_FILE + ".restore")
                tmp.write_bytes(before)
                os.replace(tmp, self.results_path)
            flags.append("train.py wrote results.tsv (restored)")
        now = gitops.harness_hashes(self.root)
        if now != self.harness_hashes:
            changed = sorted(k for k in set(now) | set(self.harness_hashes) if now.get(k) != self.harness_hashes.get(k))
            flags.append(f"{HARNESS_CHANGED}: " + ",".join(changed))
            self.harness_hashes = now
        head, ref = self._git_state()
        if ref != self.git_state[1]:
            gitops.restore_ref(self.root, gitops.INCUMBENT_REF + self.branch, self.git_state[1])
            flags.append("train.py moved the incumbent ref (restored)")
        if head != self.git_state[0]:
            flags.append(f"train.py moved HEAD ({self.git_state[0][:7]} -> {head[:7]})")
            self.git_state = (head, self.git_state[1])
        self.flags += flags
        return flags
