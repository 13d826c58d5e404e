"""One orchestrator invocation's seeds: a run folder, the seeds run on the slots (or a cluster), and
the guard on results.tsv and the harness around each of them.

An experiment and a noise-floor run (harness.experiment) share it: the opening (a run folder holding
the train.py files that will run), every seed (load wait, harness.seedrun, integrity checks, a
loaded run set aside and run again), and the closing (rows, then experiment.json, then the summary).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from harness import gitops, integrity, load, results, sandbox, seedrun, slots, summary
from harness.display import Display
from harness.results import SeedResult
from harness.runs import CURVES_FILE, RESULTS_FILE, RUNS_DIR, new_run_id, seed_dir
from harness.seedrun import LOADED, not_a_verdict
from harness.settings import Settings

LOADED_TRIES = 3             # runs of a seed on a loaded machine before it is recorded as `loaded`


class Session:
    """One orchestrator invocation: a run folder, its seeds on the slots, the guard on results.tsv and the harness."""

    def __init__(self, root: Path, settings: Settings, display: Display, commit_short: str,
                 sources: dict[str, bytes]):
        """The shared opening: a new run folder holding the train.py files (sources) that will run."""
        self.root, self.settings, self.display, self.sources = root, settings, display, sources
        self.run_id = new_run_id(root, commit_short)
        self.run_dir = root / RUNS_DIR / self.run_id
        self.run_dir.mkdir(parents=True)
        for rel, data in sources.items():
            (self.run_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.run_dir / rel).write_bytes(data)
        self.sandbox = sandbox.choose(settings.backend)
        # bare, a run could leave its weights in /dev/shm or SysV IPC: watched (a cluster node is not)
        self.guard = integrity.Guard(root, gitops.branch(root),
                                     watch_ipc=self.sandbox.kind != "bwrap" and not settings.cluster)
        self.remote = self.slot_plan = None
        if settings.cluster:
            from harness import cluster

            self.remote = cluster.Remote(root, settings, self.run_dir, sources)
        else:
            self.slot_plan = slots.plan(settings.slots, settings.device)[0]
        display.parallel = settings.slots > 1

    @property
    def flags(self) -> list[str]:
        return self.guard.flags

    def run_jobs(self, jobs: list[tuple], stop_on_failure: bool = True) -> list[SeedResult | None]:
        """Run (train_rel, seed, label, under) jobs, settings.slots at once (harness.slots), in job order;
        with stop_on_failure, none is started after one failed (None in its place)."""
        return slots.run_all(jobs, self.settings.slots, lambda job, slot: self.run_seed(*job, slot=slot),
                             stop_on_failure)

    def run_seed(self, train_rel: str, seed: int, label: str, under: str = "", slot: int = 0) -> SeedResult:
        """Train train_rel (relative to the run folder) on one seed into [under/]seed<k>/, then score it.
        A run the machine's load slowed is kept aside (seed<k>.loaded<i>/) and run again, up to LOADED_TRIES."""
        out = seed_dir(self.run_dir / under, seed)
        if self.slot_plan and len(self.slot_plan) > 1:
            slots.pin(self.slot_plan[slot])
        for attempt in range(1, LOADED_TRIES + 1):
            if self.settings.checks("HARNESS_LOAD_CHECK") and not self.remote:
                load.wait_for_quiet(lambda text: self.display.line(f"{label}: {text}"))
            r = self._run_once(train_rel, seed, label, out, slot)
            if r.ok or not (r.reason or "").startswith(LOADED):
                return r
            aside = out.with_name(f"{out.name}.{LOADED}{attempt}")
            out.rename(aside)
            r.dir = str(aside.relative_to(self.root))
            if attempt < LOADED_TRIES:
                self.display.line(f"{label}: {r.reason}; running it again")
        return r

    def _run_once(self, train_rel: str, seed: int, label: str, out: Path, slot: int) -> SeedResult:
        s, d = self.settings, self.display
        train_file = self.run_dir / train_rel
        out.mkdir(parents=True, exist_ok=True)
        # side by side, the other slots write their seed folders meanwhile: watch all but the run folder,
        # whose train.py copies are compared byte for byte instead
        unwatched = self.run_dir if s.slots > 1 else out
        before = self.guard.snapshot(unwatched)
        say = lambda text: d.line(f"{label}: {text}")  # noqa: E731
        if self.remote:
            r = self.remote.run_seed(train_rel, seed, out, self.run_dir, say)
        else:
            gpu = self.slot_plan[slot].gpu
            r = seedrun.train_and_score(
                self.root, train_file, seed, out, s, self.sandbox, s.checks("HARNESS_LOAD_CHECK"), say=say,
                on_progress=lambda elapsed, steps, scalars: d.progress(label, elapsed, s.budget_s, steps, scalars),
                echo=d.echo, env=None if gpu is None else {**os.environ, "CUDA_VISIBLE_DEVICES": str(gpu)})
            d.end_progress(label)
        if r.ok:
            r.flags += self.guard.check_budget(r.train_s, s.budget_s)
            r.flags += self.guard.check_borrowed(r.metrics, out, train_file.read_bytes())
            if r.metrics is not None:  # what the seed ran on, beside its score
                r.metrics["resources"] = s.resources
                (out / "metrics.json").write_text(json.dumps(r.metrics, indent=1))
        r.flags += self.guard.check(before, unwatched)  # after scoring too: nothing may change until the row is written
        if unwatched == self.run_dir:
            r.flags += self.guard.check_sources(self.run_dir, self.sources)
        for f in r.flags:
            d.line(f"integrity: {f}")
        self._plot(out)
        if r.ok:
            m = r.metrics
            say(f"vel_err {m['vel_err']:.4f} (standing still {m['standing_still']:.4f})  "
                f"survival {m['survival']:.2f}  gait {m['gait']}")
        else:
            say(f"crash: {r.reason}")
            if not not_a_verdict(r.reason):
                self._log_tail(out / "train.log")
        return r

    def _plot(self, out: Path) -> None:
        csv = out / CURVES_FILE
        if not csv.exists():
            return
        try:
            from harness.plots import plot_curves

            plot_curves(csv, out / "curves.png")
        except Exception as e:  # a plot is a convenience; never fail an experiment for it
            self.display.line(f"(no curves.png: {type(e).__name__}: {e})")

    def _log_tail(self, log: Path, lines: int = 15) -> None:
        if log.exists():
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            if tail:
                self.display.line(f"last lines of {log.relative_to(self.root)}:")
                for line in tail:
                    self.display.echo(line)

    def close(self, rows: list[dict], record: dict, values: dict, keys: tuple[str, ...], then=None) -> int:
        """The shared closing: append the rows, then (then()) move the incumbent, write experiment.json,
        print the summary block."""
        for row in rows:
            results.append_row(self.root / RESULTS_FILE, row, journal_path=self.guard.journal)
        if then is not None:
            then()
        (self.run_dir / "experiment.json").write_text(json.dumps(record, indent=1, default=str))
        self.display.summary(summary.block(keys, values))
        return 0
