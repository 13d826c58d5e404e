"""The orchestrator of one experiment (`uv run train.py`) and of `evaluate.py floor` / `apply`.

evaluate.run(train) replaces train.py's process with `python -m harness.experiment`, so nothing
train.py did at import time (monkey-patching, seeding) reaches the scoring. For each
harness-chosen seed, the candidate (HEAD's train.py, copied into the run folder) trains in a
supervised worker; a separate process scores its artifact; the incumbent (the branch's last kept
commit, train.py from `git show`) is re-run on the same seed when its score there is unknown;
harness.verdict decides whether to add a seed, keep or discard. Rows are appended to results.tsv
before anything is printed as the next git step.

An experiment and a noise-floor run share their opening (a run folder holding the train.py that
will run, a Session guarding results.tsv and the harness) and their closing (rows, then
experiment.json, then the summary block).
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path

from harness import backends, gitops, integrity, load, proc, results, sandbox, scoring, summary, supervisor, verdict
from harness.display import Display
from harness.results import KEPT, SeedResult, aggregate, make_row
from harness.runs import ARTIFACT_NAME, CURVES_FILE, RESULTS_FILE, RUNS_DIR, new_run_id, seed_dir
from harness.settings import Settings, UsageError, add_run_options, make_settings

BASELINE_SEEDS = 1
LOADED_TRIES = 3             # runs of a seed on a loaded machine before it is recorded as `loaded`
LOADED = "loaded"            # the crash reason's first word: not a verdict on train.py


class Session:
    """One orchestrator invocation: a run folder, its seeds, and the guard on results.tsv and the harness."""

    def __init__(self, root: Path, settings: Settings, display: Display, commit_short: str,
                 sources: dict[str, bytes]):
        """The shared opening: a new run folder holding the train.py files (sources) that will run."""
        self.root, self.settings, self.display = root, settings, display
        self.run_id = new_run_id(root, commit_short)
        self.run_dir = root / RUNS_DIR / self.run_id
        self.run_dir.mkdir(parents=True)
        for rel, data in sources.items():
            (self.run_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.run_dir / rel).write_bytes(data)
        self.guard = integrity.Guard(root, gitops.branch(root))
        self.sandbox = sandbox.choose(settings.backend)

    @property
    def flags(self) -> list[str]:
        return self.guard.flags

    def run_seed(self, train_rel: str, seed: int, label: str, under: str = "") -> SeedResult:
        """Train train_rel (relative to the run folder) on one seed into [under/]seed<k>/, then score it.
        A run the machine's load slowed is kept aside (seed<k>.loaded<i>/) and run again, up to LOADED_TRIES."""
        out = seed_dir(self.run_dir / under, seed)
        for attempt in range(1, LOADED_TRIES + 1):
            if self.settings.checks("HARNESS_LOAD_CHECK"):
                load.wait_for_quiet(lambda text: self.display.line(f"{label}: {text}"))
            r = self._run_once(train_rel, seed, label, out)
            if r.ok or not (r.reason or "").startswith(LOADED):
                return r
            aside = out.with_name(f"{out.name}.{LOADED}{attempt}")
            out.rename(aside)
            r.dir = str(aside.relative_to(self.root))
            if attempt < LOADED_TRIES:
                self.display.line(f"{label}: {r.reason}; running it again")
        return r

    def _run_once(self, train_rel: str, seed: int, label: str, out: Path) -> SeedResult:
        s, d = self.settings, self.display
        train_file = self.run_dir / train_rel
        out.mkdir(parents=True, exist_ok=True)
        before = self.guard.snapshot(out)
        d.line(f"{label}: training {train_file.relative_to(self.root)} for {s.budget_s:g} s on {s.backend}/{s.device}"
               f" (sandbox: {self.sandbox.label})")
        cmd = [sys.executable, "-m", "harness.worker", "--train", str(train_file), "--seed", str(seed),
               "--out", str(out), "--backend", s.backend, "--device", s.device, "--budget", str(s.budget_s)]
        if s.smoke:
            cmd.append("--smoke")
        cmd = sandbox.wrap(cmd, self.sandbox, self.root, writable=out, readable=[train_file],
                           network=s.backend != "mujoco")
        w = supervisor.run_supervised(
            cmd, out / "train.log", s.budget_s, echo=d.echo, cwd=self.root,
            on_progress=lambda elapsed, steps, scalars: d.progress(label, elapsed, s.budget_s, steps, scalars),
        )
        d.end_progress()
        r = SeedResult(seed, w.ok, w.reason, str(out.relative_to(self.root)), startup_s=w.startup_s,
                       train_s=w.train_s, env_steps=w.env_steps, foreign_share=w.foreign_share)
        if w.ok and s.checks("HARNESS_LOAD_CHECK") and load.is_loaded(w.foreign_share):
            r.ok, r.reason = False, (f"{LOADED}: other processes used {w.foreign_share:.0%} of the CPUs while it trained "
                                     f"({w.env_steps:,} env steps); not compared")
        if w.ok:
            r.flags += self.guard.check_budget(w.train_s, s.budget_s)
        if r.ok:
            d.line(f"{label}: trained {w.train_s:.1f} s ({w.env_steps:,} env steps, start-up {w.startup_s:.1f} s); scoring")
            try:
                r.metrics = scoring.run_evaluation(out / ARTIFACT_NAME, out / "metrics.json", s.backend, s.device,
                                                   log_path=out / "eval.log")
            except scoring.EvalError as e:
                r.ok, r.reason = False, str(e)
        if r.ok:
            r.flags += self.guard.check_borrowed(r.metrics, out, train_file.read_bytes())
        r.flags += self.guard.check(before, out)  # after scoring too: nothing may change until the row is written
        for f in r.flags:
            d.line(f"integrity: {f}")
        self._plot(out)
        if r.ok:
            m = r.metrics
            d.line(f"{label}: vel_err {m['vel_err']:.4f} (standing still {m['standing_still']:.4f})  "
                   f"survival {m['survival']:.2f}  gait {m['gait']}")
        else:
            d.line(f"{label}: crash: {r.reason}")
            if not r.reason.startswith(LOADED):
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


def _unrecorded_if_modified(agg: dict, harness_ok: bool, reason: str) -> str:
    """A score from a harness that was not the incumbent's, unchanged, goes into reason, never vel_err."""
    if harness_ok or agg["vel_err"] is None:
        return reason
    scored, agg["vel_err"] = agg["vel_err"], None
    return f"{reason} | scored {scored:.4f} with a modified harness: not recorded as vel_err"


def _peak_mem_mb() -> int:
    return int(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)


def _open_results(path: Path) -> list[dict]:
    rows = results.read_results(path)
    results.ensure_file(path)
    return rows


def _held_out_check(session: Session, root: Path, cand: list[SeedResult], rows: list[dict], inc_short: str,
                    settings: Settings) -> tuple[float | None, str | None]:
    """Score a keep's seeds on a fresh held-out panel (harness.scoring, its own process): (mean held-out
    vel_err, why it is clearly worse than the incumbent's or None). A failed check keeps nothing."""
    ok = [r for r in cand if r.ok]
    out = session.run_dir / "held_out.json"
    session.display.line(f"held-out check: {len(ok)} seed(s) on a fresh panel with pushes, friction, mass and noise")
    try:
        scored = scoring.run_held_out([root / r.dir / ARTIFACT_NAME for r in ok], out, settings.backend, settings.device,
                                      log_path=session.run_dir / "held_out.log")
    except scoring.EvalError as e:
        return None, f"the held-out check failed ({e})"
    for r in ok:
        r.held_out = scored["policies"][str(root / r.dir / ARTIFACT_NAME)]["held_out"]
    values = [r.held_out for r in ok]
    mean = sum(values) / len(values)
    session.display.line(f"held-out: {mean:.4f} (panel {sum(r.vel_err for r in ok) / len(ok):.4f}; "
                         f"panel seed {scored['panel_seed']})")
    incumbent = verdict.incumbent_held_out(rows, inc_short, settings.backend, settings.budget_s) if inc_short else None
    return mean, verdict.held_out_worse(values, *incumbent) if incumbent else None


def run_experiment(root: Path, train_rel: str, settings: Settings, display: Display) -> int:
    t0 = time.monotonic()
    backends.preflight(settings.backend, settings.device)   # before anything is recorded
    gitops.check_repo(root)
    branch = gitops.branch(root)
    harness_dirty = gitops.check_tree(root, train_rel)
    _open_results(root / RESULTS_FILE)
    rows = integrity.reconcile(root, branch, display)
    head = gitops.head(root)
    head_short = gitops.short(root, head)
    inc = gitops.incumbent(root, branch)
    if inc == head and not settings.smoke:
        display.line(f"HEAD {head_short} is the incumbent of {branch}: running a noise-floor seed instead")
        return run_floor(root, settings, 1, display, t0=t0)
    inc_short = gitops.short(root, inc) if inc else ""
    harness_reasons = integrity.harness_reasons(harness_dirty, bool(inc) and gitops.harness_differs(root, inc, head),
                                                inc_short)
    sources = {"train.py": gitops.show(root, head, train_rel)}
    if inc:
        sources["incumbent/train.py"] = gitops.show(root, inc, train_rel)
    session = Session(root, settings, display, head_short, sources)
    description = gitops.subject(root, head)
    display.line(f"experiment {session.run_id}: {head_short} \"{description}\" on {branch}; "
                 f"incumbent {inc_short or 'none (this is the baseline)'}"
                 + (f"; SMOKE ({'; '.join(settings.smoke_why)})" if settings.smoke else ""))

    stored = {} if settings.smoke or not inc else verdict.incumbent_scores(rows, inc_short, settings.backend, settings.budget_s)
    inc_scores = dict(stored)
    cand: list[SeedResult] = []
    inc_runs: list[SeedResult] = []
    decision = None
    incumbent_failed = None
    max_seeds = BASELINE_SEEDS if not inc else settings.max_seeds
    launcher_code = integrity.code_before_evaluate(sources["train.py"].decode(errors="replace"), root)
    for seed in range(1, max_seeds + 1):
        if launcher_code:  # it already ran, in the launcher: refuse the run, train nothing
            cand.append(SeedResult(seed, False, f"train.py runs code before `import evaluate` hands over: "
                                                f"{launcher_code}; move it below that import", ""))
            break
        r = session.run_seed("train.py", seed, f"seed {seed}")
        cand.append(r)
        if not r.ok or not inc:
            break
        if seed not in inc_scores:
            ir = session.run_seed("incumbent/train.py", seed, f"incumbent {inc_short} seed {seed}", under="incumbent")
            inc_runs.append(ir)
            if not ir.ok:
                incumbent_failed = (seed, ir.reason)
                break
            inc_scores[seed] = ir.vel_err
        decision = verdict.decide([c.vel_err - inc_scores[c.seed] for c in cand], list(inc_scores.values()), max_seeds)
        display.line(f"verdict after {decision.k} seed(s): {decision.action}: {decision.reason}")
        if decision.final:
            break

    crashed = next((r for r in cand if not r.ok), None)
    crash = crashed.reason if crashed else None
    if incumbent_failed and incumbent_failed[1].startswith(LOADED):  # load, not the incumbent, failed it
        crash, incumbent_failed = f"{incumbent_failed[1]} (incumbent {inc_short} seed {incumbent_failed[0]})", None
    never_keep = harness_reasons + session.flags
    judged = dict(crash=crash, has_incumbent=bool(inc), branch=branch, inc_short=inc_short,
                  incumbent_failed=incumbent_failed, decision=decision)
    held_out = None
    would_keep = verdict.resolve_status(**judged, never_keep=never_keep, smoke_why=[])[0] in KEPT
    if would_keep and settings.checks("HARNESS_HELD_OUT"):
        held_out, worse = _held_out_check(session, root, cand, rows, inc_short, settings)
        never_keep += [worse] if worse else []
    status, reason = verdict.resolve_status(**judged, never_keep=never_keep, smoke_why=settings.smoke_why)
    harness_ok = integrity.harness_ok(harness_reasons, session.flags)
    agg = aggregate(cand)
    reason = _unrecorded_if_modified(agg, harness_ok, reason)
    delta = decision.mean_diff if decision is not None else None
    new_rows = []
    if inc_runs and not settings.smoke and any(r.ok for r in inc_runs):
        new_rows.append(make_row(session.run_id, inc_short, "floor", aggregate([r for r in inc_runs if r.ok]), settings,
                                 harness_ok, f"paired re-run for {head_short}", gitops.subject(root, inc)))
    row = make_row(session.run_id, head_short, status, agg, settings, harness_ok, reason, description,
                   delta=delta, incumbent=inc_short, held_out=held_out)
    new_rows.append(row)

    measured = verdict.measured_floor(list(inc_scores.values()) if inc else [r.vel_err for r in cand if r.ok])
    if status in KEPT:
        step = (f"uv run evaluate.py apply   (keep: {head_short} stays and is the incumbent); then uv run evaluate.py "
                f"floor   (measures it on the seeds it lacks, so the next verdicts start at once)")
    elif reason.startswith(LOADED):
        step = "uv run train.py again once the machine is quiet (a loaded run is not a verdict: nothing to apply)"
    elif status == "smoke":
        step = "none: smoke runs are never kept"
    elif inc:
        step = f"uv run evaluate.py apply   (git reset --hard {inc_short})"
    else:
        step = "fix train.py, commit, run again (no kept commit to reset to yet)"
    total_s = time.monotonic() - t0
    record = {
        "run_id": session.run_id, "branch": branch, "commit": head, "incumbent": inc, "settings": asdict(settings),
        "status": status, "reason": reason, "flags": never_keep,
        "decision": asdict(decision) if decision else None, "sigma_floor": verdict.sigma_floor(list(inc_scores.values())),
        "held_out": held_out,
        "incumbent_scores": inc_scores, "incumbent_scores_stored": stored,
        "seeds": [asdict(r) for r in cand], "incumbent_seeds": [asdict(r) for r in inc_runs],
        "row": row, "total_s": total_s,
    }
    values = {
        **agg, "delta": delta, "incumbent": inc_short or None, "held_out": held_out,
        "held_out_gap": held_out - agg["vel_err"] if held_out is not None and agg["vel_err"] is not None else None,
        "noise_floor": measured if measured is not None else
        f"needs {verdict.MIN_FLOOR_SEEDS} seeds of the incumbent (run uv run evaluate.py floor)",
        "train_seconds": agg["train_s"], "startup_seconds": agg["startup_s"], "total_seconds": total_s,
        "steps_per_second": int(agg["env_steps"] / agg["train_s"]) if agg["train_s"] else None,
        "peak_mem_mb": _peak_mem_mb(), "backend": settings.backend, "device": settings.device,
        "budget_s": f"{settings.budget_s:g}", "harness": "ok" if harness_ok else "modified",
        "sandbox": session.sandbox.label,
        "run_id": session.run_id, "commit": head_short, "verdict": status, "reason": reason, "next": step,
    }
    then = (lambda: integrity.set_incumbent(root, branch, head)) if status in KEPT else None
    return session.close(new_rows, record, values, summary.RUN_KEYS, then=then)


def _missing_seeds(have, n: int) -> list[int]:
    out, s = [], 1
    while len(out) < n:
        if s not in have:
            out.append(s)
        s += 1
    return out


def run_floor(root: Path, settings: Settings, n_seeds: int | None, display: Display, t0: float | None = None,
              rerun: list[int] = ()) -> int:
    """Run the incumbent on seeds it has no score for (by default every one of 1..max_seeds, so a verdict
    never waits on it); the spread is the noise floor. rerun: drop those seeds' scores first (a row marks it)."""
    t0 = t0 or time.monotonic()
    backends.preflight(settings.backend, settings.device)   # before anything is recorded
    gitops.check_repo(root)
    branch = gitops.branch(root)
    _open_results(root / RESULTS_FILE)
    rows = integrity.reconcile(root, branch, display)
    inc = gitops.incumbent(root, branch)
    if not inc:
        raise UsageError(f"no incumbent on {branch} yet: run `uv run train.py` first (that run is the baseline)")
    if any(k < 1 for k in rerun):
        raise UsageError("--rerun takes seed numbers (1, 2, ...)")
    inc_short = gitops.short(root, inc)
    dirty = [p for _, p in gitops.dirty_paths(root) if gitops.is_harness(p)]
    harness_reasons = integrity.harness_reasons(dirty, gitops.harness_differs(root, inc, "HEAD"), inc_short,
                                                whose="HEAD's harness")
    have = verdict.incumbent_runs(rows, inc_short, settings.backend, settings.budget_s)
    for k in rerun:
        have.pop(k, None)
    if n_seeds is None:  # every seed a verdict may use
        n_seeds = sum(k not in have for k in range(1, settings.max_seeds + 1))
    seeds = sorted(set(rerun)) or _missing_seeds(have, n_seeds)
    if not seeds:
        display.line(f"the incumbent {inc_short} has scores on all {settings.max_seeds} seeds a verdict uses; "
                     "nothing to run (--seeds N adds more)")
        return 0
    session = Session(root, settings, display, inc_short, {"train.py": gitops.show(root, inc, gitops.TRAIN_FILE)})
    if rerun and not settings.smoke:  # the mark first: a re-run interrupted half-way leaves the seed to measure again
        drop = make_row(session.run_id, inc_short, "floor", aggregate([]), settings, True,
                        f"scores of seed(s) {', '.join(map(str, seeds))} dropped (evaluate.py floor --rerun)",
                        gitops.subject(root, inc))
        drop["seed_scores"] = results.format_seed_scores({k: results.DROPPED for k in seeds})
        results.append_row(root / RESULTS_FILE, drop, journal_path=session.guard.journal)
    display.line(f"noise floor {session.run_id}: incumbent {inc_short} on seeds {seeds}")
    runs = [session.run_seed("train.py", s, f"floor seed {s}") for s in seeds]
    ok = [r for r in runs if r.ok]
    status = "crash" if not ok else ("smoke" if settings.smoke else "floor")
    crashed = [f"seed {r.seed}: {r.reason}" for r in runs if not r.ok]
    reason = "; ".join(harness_reasons + session.flags + crashed) or "noise-floor re-run of the incumbent"
    harness_ok = integrity.harness_ok(harness_reasons, session.flags)
    agg = aggregate(runs)
    reason = _unrecorded_if_modified(agg, harness_ok, reason)
    row = make_row(session.run_id, inc_short, status, agg, settings, harness_ok, reason, gitops.subject(root, inc))
    if harness_ok and not settings.smoke:
        for r in ok:
            have.setdefault(r.seed, []).append(r.vel_err)
    all_scores = {k: sum(v) / len(v) for k, v in have.items()}
    measured = verdict.measured_floor(list(all_scores.values()))
    record = {"run_id": session.run_id, "kind": "floor", "incumbent": inc, "seeds": [asdict(r) for r in runs],
              "row": row, "scores": all_scores}
    values = {
        **agg, "seeds": len(all_scores), "seed_scores": results.format_seed_scores(all_scores),
        "noise_floor": measured if measured is not None else f"needs {verdict.MIN_FLOOR_SEEDS} seeds (have {len(all_scores)})",
        "sigma_used": verdict.sigma_floor(list(all_scores.values())),
        "train_seconds": agg["train_s"], "total_seconds": time.monotonic() - t0, "backend": settings.backend,
        "harness": "ok" if harness_ok else "modified", "sandbox": session.sandbox.label,
        "run_id": session.run_id, "commit": inc_short,
        "verdict": status, "reason": reason, "next": "edit train.py, commit, uv run train.py > run.log 2>&1",
    }
    return session.close([row], record, values, summary.FLOOR_KEYS)


def apply_verdict(root: Path, display: Display) -> int:
    """Apply the last experiment's verdict with git: keep -> nothing; discard/crash -> reset to the incumbent."""
    gitops.check_repo(root)
    branch = gitops.branch(root)
    rows = integrity.reconcile(root, branch, display)
    head_short = gitops.short(root, "HEAD")
    last = next((r for r in reversed(rows) if r["commit"] == head_short and r["status"] != "floor"), None)
    if last is None:
        display.line(f"HEAD {head_short} has no experiment row in {RESULTS_FILE}: run `uv run train.py` first")
        return 1
    status = last["status"]
    if status == "crash" and last["reason"].startswith(LOADED):
        display.line(f"{head_short} was not judged: {last['reason']}. Nothing to undo; run `uv run train.py` again "
                     "once the machine is quiet")
        return 0
    if status in KEPT:
        display.line(f"{status}: {head_short} stays; it is the incumbent of {branch}. Nothing to undo.")
        return 0
    if status == "smoke":
        display.line(f"{last['run_id']} was a smoke run: never kept, nothing to apply")
        return 0
    inc = gitops.incumbent(root, branch)
    if inc is None:
        display.line(f"{status}: no kept commit on {branch} yet, nothing to reset to. Fix train.py, commit, run again.")
        return 1
    gitops.reset_hard(root, inc)
    display.line(f"{status}: reset {branch} to the incumbent {gitops.short(root, inc)} "
                 f"(\"{gitops.subject(root, inc)}\"); {head_short}'s row stays in {RESULTS_FILE}")
    return 0


def _sigterm_as_interrupt(signum, frame):
    raise KeyboardInterrupt


def become_orchestrator() -> None:
    """SIGTERM unwinds like Ctrl-C, so every supervised child is killed on the way out; orphans below
    become ours (harness.proc.kill_strays ends them); no .pyc the watch would see is written."""
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    proc.become_subreaper()
    sys.dont_write_bytecode = True


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="uv run train.py", description="Train, score and judge HEAD's train.py.")
    p.add_argument("--train", default=gitops.TRAIN_FILE, help=argparse.SUPPRESS)
    add_run_options(p)
    args = p.parse_args(argv)
    root = Path.cwd().resolve()
    display = Display()
    become_orchestrator()
    try:
        with integrity.checkout_lock(root, f"uv run train.py {' '.join(argv or sys.argv[1:])}".strip()):
            return run_experiment(root, args.train, make_settings(args), display)
    except (gitops.GitError, results.ResultsError, UsageError, backends.BackendError, integrity.LockedError) as e:
        display.line(f"error: {e}")
        return 2
    except KeyboardInterrupt:
        display.line("interrupted: the training process was stopped; no row was written for this run")
        return 130


if __name__ == "__main__":
    sys.exit(main())
