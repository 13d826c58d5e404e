"""The orchestrator of one experiment (`uv run train.py`) and of `evaluate.py floor` / `apply`.

evaluate.run(train) replaces train.py's process with `python -m harness.experiment`, so nothing
train.py did at import time (monkey-patching, seeding) reaches the scoring. The harness chooses the
seeds and runs them in waves, as many at once as there are slots (harness.slots; one on 2 cores):
the candidate (HEAD's train.py, copied into the run folder) trains in a supervised worker, a
separate process scores its artifact, and the incumbent (the branch's last kept commit, train.py
from `git show`) is re-run on a seed when its score there is unknown. After each wave
harness.verdict decides whether to add a wave, keep or discard. Rows are appended to results.tsv
before anything is printed as the next git step.

An experiment and a noise-floor run share a harness.session.Session: the run folder, every seed,
and the closing (rows, then experiment.json, then the summary block).
"""

from __future__ import annotations

import argparse
import resource
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path

from harness import backends, config, diagnose, gitops, integrity, proc, results, scoring, summary, verdict
from harness.display import Display
from harness.results import KEPT, SeedResult, aggregate, make_row
from harness.runs import ARTIFACT_NAME, DIFF_FILE, RESULTS_FILE
from harness.seedrun import not_a_verdict
from harness.session import Session
from harness.settings import Settings, UsageError, add_run_options, make_settings

BASELINE_SEEDS = 1


def _unrecorded_if_modified(agg: dict, harness_ok: bool, reason: str) -> str:
    """A score from a harness that was not the incumbent's, unchanged, goes into reason, never vel_err."""
    if harness_ok or agg["vel_err"] is None:
        return reason
    scored, agg["vel_err"] = agg["vel_err"], None
    return f"{reason} | scored {scored:.4f} with a modified harness: not recorded as vel_err"


def _pairing(settings: Settings) -> tuple:
    """What a stored score must share with this run to be paired with it: backend, budget, slot resources, task."""
    return settings.backend, settings.budget_s, settings.resources, settings.task


def choose_task(root: Path, branch: str, settings: Settings, has_incumbent: bool) -> None:
    """Settle settings.task: the branch's, remembered from its first real run; --task chooses it only then.
    A branch with an incumbent but no remembered task is from before tasks, when every run was flat."""
    remembered = gitops.branch_task(root, branch) or (config.DEFAULT_TASK if has_incumbent else None)
    asked = settings.task
    if remembered and asked and asked != remembered:
        raise UsageError(f"branch {branch} runs the {remembered} task (its first run chose it), and scores pair only "
                         f"within a task. For {asked}, start a branch of its own: git checkout -b autoresearch/<tag>, "
                         f"then uv run train.py --task {asked}")
    settings.task = remembered or asked or config.DEFAULT_TASK
    if not remembered and not settings.smoke:
        gitops.set_branch_task(root, branch, settings.task)


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
                                      log_path=session.run_dir / "held_out.log", task=settings.task)
    except scoring.EvalError as e:
        return None, f"the held-out check failed ({e})"
    for r in ok:
        r.held_out = scored["policies"][str(root / r.dir / ARTIFACT_NAME)]["held_out"]
    values = [r.held_out for r in ok]
    mean = sum(values) / len(values)
    session.display.line(f"held-out: {mean:.4f} (panel {sum(r.vel_err for r in ok) / len(ok):.4f}; "
                         f"panel seed {scored['panel_seed']})")
    incumbent = verdict.incumbent_held_out(rows, inc_short, *_pairing(settings)) if inc_short else None
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
    choose_task(root, branch, settings, bool(inc))
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
    description = gitops.subject(root, head) if inc else f"baseline: {gitops.subject(root, head)}"
    if inc:  # the night's record: what this experiment changed, kept even when git resets it
        (session.run_dir / DIFF_FILE).write_text(gitops.git(root, "diff", inc, head, "--", train_rel) + "\n")
    display.line(f"experiment {session.run_id}: {head_short} \"{description}\" on {branch} ({settings.task}); "
                 f"incumbent {inc_short or 'none (this is the baseline)'}"
                 + (f"; SMOKE ({'; '.join(settings.smoke_why)})" if settings.smoke else ""))

    stored = {} if settings.smoke or not inc else verdict.incumbent_scores(rows, inc_short, *_pairing(settings))
    inc_scores = dict(stored)
    cand: list[SeedResult] = []
    inc_runs: list[SeedResult] = []
    decision = None
    incumbent_failed = None
    max_seeds = BASELINE_SEEDS if not inc else settings.max_seeds
    launcher_code = integrity.code_before_evaluate(sources["train.py"].decode(errors="replace"), root)
    wave = 1 if not inc else min(settings.slots, max_seeds)   # seeds run at once; the rule looks after each wave
    if launcher_code:  # it already ran, in the launcher: refuse the run, train nothing
        cand.append(SeedResult(1, False, f"train.py runs code before `import evaluate` hands over: "
                                         f"{launcher_code}; move it below that import", ""))
    while not launcher_code and len(cand) < max_seeds:
        seeds = list(range(len(cand) + 1, min(len(cand) + wave, max_seeds) + 1))
        jobs = [("train.py", k, f"seed {k}", "") for k in seeds]
        jobs += [("incumbent/train.py", k, f"incumbent {inc_short} seed {k}", "incumbent")
                 for k in seeds if inc and k not in inc_scores]
        done = session.run_jobs(jobs)
        cand += [r for r in done[:len(seeds)] if r is not None]
        for r in done[len(seeds):]:
            if r is not None:
                inc_runs.append(r)
                if r.ok:
                    inc_scores[r.seed] = r.vel_err
                elif incumbent_failed is None:
                    incumbent_failed = (r.seed, r.reason)
        if not inc or incumbent_failed or not all(r.ok for r in cand) or len(cand) < seeds[-1]:
            break
        decision = verdict.decide([c.vel_err - inc_scores[c.seed] for c in cand], list(inc_scores.values()),
                                  max_seeds, wave=wave)
        display.line(f"verdict after {decision.k} seed(s): {decision.action}: {decision.reason}")
        if decision.final:
            break

    crashed = next((r for r in cand if not r.ok), None)
    crash = crashed.reason if crashed else None
    if incumbent_failed and not_a_verdict(incumbent_failed[1]):  # the machine, not the incumbent, failed it
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
        step = (f"uv run evaluate.py apply   (keep: {head_short} stays and is the incumbent); then your next experiment "
                f"(each verdict runs the incumbent on the seeds it lacks)")
    elif not_a_verdict(reason):
        step = ("uv run train.py again once the machine is quiet (a loaded run or a lost node is not a verdict: "
                "nothing to apply)")
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
        **agg, **diagnose.summary_values([r.metrics["breakdown"] for r in cand if r.ok]),
        "delta": delta, "incumbent": inc_short or None, "held_out": held_out,
        "held_out_gap": held_out - agg["vel_err"] if held_out is not None and agg["vel_err"] is not None else None,
        "noise_floor": measured if measured is not None else
        f"needs {verdict.MIN_FLOOR_SEEDS} seeds of the incumbent (verdicts add them; evaluate.py floor adds all now)",
        "train_seconds": agg["train_s"], "startup_seconds": agg["startup_s"], "total_seconds": total_s,
        "steps_per_second": int(agg["env_steps"] / agg["train_s"]) if agg["train_s"] else None,
        "peak_mem_mb": _peak_mem_mb(), "task": settings.task, "backend": settings.backend, "device": settings.device,
        "budget_s": f"{settings.budget_s:g}", "harness": "ok" if harness_ok else "modified",
        "slots": settings.slots, "resources": settings.resources, "sandbox": session.sandbox.label,
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
    choose_task(root, branch, settings, True)
    if any(k < 1 for k in rerun):
        raise UsageError("--rerun takes seed numbers (1, 2, ...)")
    inc_short = gitops.short(root, inc)
    dirty = [p for _, p in gitops.dirty_paths(root) if gitops.is_harness(p)]
    harness_reasons = integrity.harness_reasons(dirty, gitops.harness_differs(root, inc, "HEAD"), inc_short,
                                                whose="HEAD's harness")
    have = verdict.incumbent_runs(rows, inc_short, *_pairing(settings))
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
    runs = session.run_jobs([("train.py", s, f"floor seed {s}", "") for s in seeds], stop_on_failure=False)
    ok = [r for r in runs if r.ok]
    status = "crash" if not ok else ("smoke" if settings.smoke else "floor")
    crashed = [f"seed {r.seed}: {r.reason}" for r in runs if not r.ok]
    reason = "; ".join(harness_reasons + session.flags + crashed) or "noise-floor re-run of the incumbent"
    harness_ok = integrity.harness_ok(harness_reasons, session.flags)
    agg = aggregate(runs)
    reason = _unrecorded_if_modified(agg, harness_ok, reason)
    row = make_row(session.run_id, inc_short, status, agg, settings, harness_ok, reason, gitops.subject(root, inc))
    recorded = harness_ok and not settings.smoke
    if recorded:
        for r in ok:
            have.setdefault(r.seed, []).append(r.vel_err)
    all_scores = {k: sum(v) / len(v) for k, v in have.items()}
    ran = f"seeds {', '.join(str(r.seed) for r in runs)} ({len(ok)} scored): " + (
        "vel_err and seed_scores cover every seed of the incumbent, survival and falls these" if recorded and ok
        else "not recorded, so every figure but seed_scores is theirs")
    measured = verdict.measured_floor(list(all_scores.values()))
    record = {"run_id": session.run_id, "kind": "floor", "incumbent": inc, "seeds": [asdict(r) for r in runs],
              "row": row, "scores": all_scores}
    values = {
        **agg, **diagnose.summary_values([r.metrics["breakdown"] for r in ok]),
        "vel_err": sum(all_scores.values()) / len(all_scores) if recorded and ok else agg["vel_err"],
        "seeds": len(all_scores), "seed_scores": results.format_seed_scores(all_scores), "ran": ran,
        "noise_floor": measured if measured is not None else f"needs {verdict.MIN_FLOOR_SEEDS} seeds (have {len(all_scores)})",
        "sigma_used": verdict.sigma_floor(list(all_scores.values())),
        "train_seconds": agg["train_s"], "total_seconds": time.monotonic() - t0, "task": settings.task,
        "backend": settings.backend,
        "slots": settings.slots, "resources": settings.resources,
        "harness": "ok" if harness_ok else "modified", "sandbox": session.sandbox.label,
        "run_id": session.run_id, "commit": inc_short,
        "verdict": status, "reason": reason, "next": "edit train.py, commit, uv run train.py > run.log 2>&1",
    }
    return session.close([row], record, values, summary.FLOOR_KEYS)


def _last_experiment(root: Path, rows: list[dict]) -> dict | None:
    """The latest experiment row of HEAD or of a commit below it (the next idea may already be committed on top)."""
    for r in reversed(rows):
        if r["status"] != "floor" and gitops.resolve(root, r["commit"]) and \
                gitops.is_ancestor(root, r["commit"], "HEAD"):
            return r
    return None


def apply_verdict(root: Path, display: Display) -> int:
    """Apply the last experiment's verdict with git: keep -> nothing; discard/crash -> reset to the incumbent,
    carrying over any commits made on top of the experiment while it ran."""
    gitops.check_repo(root)
    branch = gitops.branch(root)
    rows = integrity.reconcile(root, branch, display)
    last = _last_experiment(root, rows)
    if last is None:
        display.line(f"HEAD {gitops.short(root, 'HEAD')} has no experiment row in {RESULTS_FILE}: "
                     "run `uv run train.py` first")
        return 1
    head_short, status = last["commit"], last["status"]
    newer = gitops.resolve(root, head_short) != gitops.head(root)   # commits on top: the next idea
    if status == "crash" and not_a_verdict(last["reason"]):
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
    inc_short = gitops.short(root, inc)
    if newer:
        failed = gitops.rebase_onto(root, inc, head_short)
        if failed:
            display.line(f"{status}: could not move the commits made on top of {head_short} onto the incumbent "
                         f"{inc_short} ({failed}); nothing was changed. Reset by hand (git reset --hard {inc_short}) "
                         "and commit your next idea again")
            return 1
        display.line(f"{status}: moved the commits made on top of {head_short} onto the incumbent {inc_short}; "
                     f"{head_short} is gone from {branch}, its row stays in {RESULTS_FILE}")
        return 0
    gitops.reset_hard(root, inc)
    display.line(f"{status}: reset {branch} to the incumbent {inc_short} "
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
