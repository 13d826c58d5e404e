"""The orchestrator of one experiment (`uv run train.py`) and of `evaluate.py floor` / `apply`.

evaluate.run(train) replaces train.py's process with `python -m harness.experiment`, so nothing
train.py did at import time (monkey-patching, seeding) reaches the scoring. For each
harness-chosen seed, the candidate (HEAD's train.py, copied into the run folder) trains in a
supervised worker; a separate process scores its artifact; the incumbent (the branch's last kept
commit, train.py from `git show`) is re-run on the same seed when its score there is unknown;
harness.verdict decides whether to add a seed, keep or discard. Rows are appended to results.tsv
before anything is printed as the next git step.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from harness import gitops, results, scoring, supervisor, verdict
from harness.display import Display
from harness.runs import ARTIFACT_NAME, BACKENDS, DEFAULT_BACKEND, DEFAULT_BUDGET_S, RESULTS_FILE, RUNS_DIR, new_run_id

SMOKE_BUDGET_S = 20.0
BASELINE_SEEDS = 1           # the noise-floor run (`evaluate.py floor`) adds more
FLOOR_SEEDS = 2
# Test-only knobs (they shrink timeouts, the panel, the seed count). A run that uses any is smoke.
TEST_OVERRIDES = (
    "HARNESS_STARTUP_TIMEOUT_S", "HARNESS_HANG_TIMEOUT_S", "HARNESS_OVERRUN_MARGIN_S", "HARNESS_EXPORT_TIMEOUT_S",
    "HARNESS_PANEL_EPISODES", "HARNESS_EVAL_STEPS", "HARNESS_MAX_SEEDS",
)

class UsageError(RuntimeError):
    pass


@dataclass
class Settings:
    backend: str
    device: str
    budget_s: float
    smoke_why: list[str]
    max_seeds: int

    @property
    def smoke(self) -> bool:
        return bool(self.smoke_why)


@dataclass
class SeedResult:
    seed: int
    ok: bool
    reason: str | None
    dir: str
    metrics: dict | None = None
    startup_s: float | None = None
    train_s: float | None = None
    env_steps: int = 0
    flags: list = field(default_factory=list)

    @property
    def vel_err(self) -> float | None:
        return self.metrics["vel_err"] if self.ok and self.metrics else None


def default_device() -> str:
    if not any(Path("/dev").glob("nvidia[0-9]*")) and not os.environ.get("CUDA_VISIBLE_DEVICES"):
        return "cpu"  # no GPU device node: skip importing torch just to learn that
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def make_settings(args) -> Settings:
    why = []
    if args.smoke:
        why.append("--smoke")
    budget = args.budget if args.budget is not None else (SMOKE_BUDGET_S if args.smoke else DEFAULT_BUDGET_S)
    if budget <= 0:
        raise UsageError("--budget must be positive")
    if budget != DEFAULT_BUDGET_S and not args.smoke:
        why.append(f"budget {budget:g} s")
    used = [k for k in TEST_OVERRIDES if os.environ.get(k)]
    if used:
        why.append("test overrides " + ",".join(used))
    max_seeds = int(os.environ.get("HARNESS_MAX_SEEDS") or (1 if why else verdict.MAX_SEEDS))
    return Settings(args.backend, args.device or default_device(), budget, why, max_seeds)


def add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--smoke", action="store_true", help=f"short budget ({SMOKE_BUDGET_S:g} s); never kept")
    p.add_argument("--budget", type=float, default=None, help=f"training seconds per seed (default {DEFAULT_BUDGET_S:g})")
    p.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND)
    p.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda if available, else cpu")


def _mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


class Session:
    """One orchestrator invocation: runs seeds, guards results.tsv and the harness files."""

    def __init__(self, root: Path, settings: Settings, display: Display):
        self.root = root
        self.settings = settings
        self.display = display
        self.results_path = root / RESULTS_FILE
        self.flags: list[str] = []
        self.harness_hashes = gitops.harness_hashes(root)
        self.branch = gitops.branch(root)
        self.git_state = self._git_state()

    def _git_state(self) -> tuple[str, str | None]:
        return gitops.head(self.root), gitops.resolve(self.root, gitops.INCUMBENT_REF + self.branch)

    def run_seed(self, train_file: Path, seed: int, seed_dir: Path, label: str) -> SeedResult:
        s, d = self.settings, self.display
        seed_dir.mkdir(parents=True, exist_ok=True)
        before = self.results_path.read_bytes() if self.results_path.exists() else None
        d.line(f"{label}: training {train_file.relative_to(self.root)} for {s.budget_s:g} s on {s.backend}/{s.device}")
        cmd = [sys.executable, "-m", "harness.worker", "--train", str(train_file), "--seed", str(seed),
               "--out", str(seed_dir), "--backend", s.backend, "--device", s.device, "--budget", str(s.budget_s)]
        if s.smoke:
            cmd.append("--smoke")
        w = supervisor.run_supervised(
            cmd, seed_dir / "train.log", s.budget_s, echo=d.echo, cwd=self.root,
            on_progress=lambda elapsed, steps, scalars: d.progress(label, elapsed, s.budget_s, steps, scalars),
        )
        d.end_progress()
        r = SeedResult(seed, w.ok, w.reason, str(seed_dir.relative_to(self.root)), startup_s=w.startup_s,
                       train_s=w.train_s, env_steps=w.env_steps)
        r.flags = self._check_integrity(before, seed_dir)
        if r.ok:
            d.line(f"{label}: trained {w.train_s:.1f} s ({w.env_steps:,} env steps, start-up {w.startup_s:.1f} s); scoring")
            try:
                r.metrics = scoring.run_evaluation(seed_dir / ARTIFACT_NAME, seed_dir / "metrics.json",
                                                      s.backend, s.device, log_path=seed_dir / "eval.log")
            except scoring.EvalError as e:
                r.ok, r.reason = False, str(e)
        self._plot(seed_dir)
        if r.ok:
            m = r.metrics
            d.line(f"{label}: vel_err {m['vel_err']:.4f} (standing still {m['standing_still']:.4f})  "
                   f"survival {m['survival']:.2f}  gait {m['gait']}")
        else:
            d.line(f"{label}: crash: {r.reason}")
            self._log_tail(seed_dir / "train.log")
        return r

    def _check_integrity(self, before: bytes | None, seed_dir: Path) -> list[str]:
        """Undo a worker's write to results.tsv; flag a worker's change to the harness files."""
        flags = []
        after = self.results_path.read_bytes() if self.results_path.exists() else None
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
            flags.append("train.py changed harness files: " + ",".join(changed))
            self.harness_hashes = now
        head, ref = self._git_state()
        if ref != self.git_state[1]:
            gitops.restore_ref(self.root, gitops.INCUMBENT_REF + self.branch, self.git_state[1])
            flags.append("train.py moved the incumbent ref (restored)")
        if head != self.git_state[0]:
            flags.append(f"train.py moved HEAD ({self.git_state[0][:7]} -> {head[:7]})")
            self.git_state = (head, self.git_state[1])
        for f in flags:
            self.display.line(f"integrity: {f}")
        self.flags += flags
        return flags

    def _plot(self, seed_dir: Path) -> None:
        csv = seed_dir / "curves.csv"
        if not csv.exists():
            return
        try:
            from harness.report import plot_curves

            plot_curves(csv, seed_dir / "curves.png")
        except Exception as e:  # a plot is a convenience; never fail an experiment for it
            self.display.line(f"(no curves.png: {type(e).__name__}: {e})")

    def _log_tail(self, log: Path, lines: int = 15) -> None:
        if log.exists():
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            if tail:
                self.display.line(f"last lines of {log.relative_to(self.root)}:")
                for line in tail:
                    self.display.echo(line)

    def append(self, row: dict) -> None:
        results.append_row(self.results_path, row)


def _aggregate(seeds: list[SeedResult]) -> dict:
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
        "seed_scores": results.format_seed_scores({r.seed: r.vel_err for r in seeds}),
    }


def _row(run_id, commit_short, status, agg, settings, harness_ok, reason, description, delta=None, incumbent=""):
    return {
        "run_id": run_id, "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": commit_short, "status": status, "vel_err": agg["vel_err"], "delta": delta,
        "yaw_err": agg["yaw_err"], "survival": agg["survival"], "torque": agg["torque"], "foot_slip": agg["foot_slip"],
        "gait": agg["gait"], "env_steps": agg["env_steps"], "train_s": f"{agg['train_s']:.1f}", "seeds": agg["seeds"],
        "seed_scores": agg["seed_scores"], "incumbent": incumbent, "backend": settings.backend,
        "budget_s": f"{settings.budget_s:g}", "harness": "ok" if harness_ok else "modified", "reason": reason,
        "description": description,
    }


def _f4(x):
    return None if x is None else f"{x:.4f}"


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=1, default=str))


def _peak_mem_mb() -> int:
    return int(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)


def _open_results(path: Path) -> list[dict]:
    rows = results.read_results(path)
    results.ensure_file(path)
    return rows


def resolve_status(crash, has_incumbent, branch, inc_short, incumbent_failed, decision, never_keep, smoke_why):
    """(status, reason) of an experiment. Crashes, integrity problems and smoke runs are never kept."""
    if crash:
        status, reason = "crash", crash
    elif not has_incumbent:
        status, reason = "baseline", f"first experiment on {branch}"
    elif incumbent_failed:
        status = "discard"
        reason = f"incumbent {inc_short} failed on seed {incumbent_failed[0]} ({incumbent_failed[1]}): no paired comparison"
    else:
        status, reason = decision.action, decision.reason
    if never_keep and status == "crash":
        reason = f"{reason} | also: " + "; ".join(never_keep)
    elif never_keep:
        if status in ("keep", "baseline"):
            status = "discard"
        reason = "never kept: " + "; ".join(never_keep) + f" | {reason}"
    if smoke_why and status != "crash":
        reason = f"smoke run ({'; '.join(smoke_why)}): never kept; would be {status}: {reason}"
        status = "smoke"
    return status, reason


def run_experiment(root: Path, train_rel: str, settings: Settings, display: Display) -> int:
    t0 = time.monotonic()
    gitops.check_repo(root)
    branch = gitops.branch(root)
    harness_dirty = gitops.check_tree(root, train_rel)
    rows = _open_results(root / RESULTS_FILE)
    head = gitops.head(root)
    head_short = gitops.short(root, head)
    inc = gitops.incumbent(root, branch)
    if inc == head and not settings.smoke:
        display.line(f"HEAD {head_short} is the incumbent of {branch}: running a noise-floor seed instead")
        return run_floor(root, settings, 1, display, t0=t0)
    inc_short = gitops.short(root, inc) if inc else ""
    harness_reasons = []
    if harness_dirty:
        harness_reasons.append("uncommitted harness changes: " + ",".join(harness_dirty))
    if inc and gitops.harness_differs(root, inc, head):
        harness_reasons.append(f"harness differs from the incumbent {inc_short}'s")

    run_id = new_run_id(root, head_short)
    run_dir = root / RUNS_DIR / run_id
    run_dir.mkdir(parents=True)
    cand_train = run_dir / "train.py"
    cand_train.write_bytes(gitops.show(root, head, train_rel))
    inc_train = None
    if inc:
        inc_train = run_dir / "incumbent" / "train.py"
        inc_train.parent.mkdir()
        inc_train.write_bytes(gitops.show(root, inc, train_rel))
    description = gitops.subject(root, head)
    display.line(f"experiment {run_id}: {head_short} \"{description}\" on {branch}; "
                 f"incumbent {inc_short or 'none (this is the baseline)'}"
                 + (f"; SMOKE ({'; '.join(settings.smoke_why)})" if settings.smoke else ""))
    session = Session(root, settings, display)

    stored = {} if settings.smoke or not inc else verdict.incumbent_scores(rows, inc_short, settings.backend, settings.budget_s)
    inc_scores = dict(stored)
    cand: list[SeedResult] = []
    inc_runs: list[SeedResult] = []
    decision = None
    incumbent_failed = None
    max_seeds = BASELINE_SEEDS if not inc else settings.max_seeds
    for seed in range(1, max_seeds + 1):
        r = session.run_seed(cand_train, seed, run_dir / f"seed{seed}", f"seed {seed}")
        cand.append(r)
        if not r.ok or not inc:
            break
        if seed not in inc_scores:
            ir = session.run_seed(inc_train, seed, run_dir / "incumbent" / f"seed{seed}", f"incumbent {inc_short} seed {seed}")
            inc_runs.append(ir)
            if not ir.ok:
                incumbent_failed = (seed, ir.reason)
                break
            inc_scores[seed] = ir.vel_err
        sigma = verdict.sigma_floor(list(inc_scores.values()))
        diffs = [c.vel_err - inc_scores[c.seed] for c in cand]
        decision = verdict.decide(diffs, sigma, max_seeds)
        display.line(f"verdict after {decision.k} seed(s): {decision.action}: {decision.reason}")
        if decision.final:
            break

    crashed = next((r for r in cand if not r.ok), None)
    status, reason = resolve_status(
        crash=crashed.reason if crashed else None, has_incumbent=bool(inc), branch=branch, inc_short=inc_short,
        incumbent_failed=incumbent_failed, decision=decision, never_keep=harness_reasons + session.flags,
        smoke_why=settings.smoke_why)
    never_keep = harness_reasons + session.flags
    harness_ok = not harness_reasons and not any(f.startswith("train.py changed harness") for f in session.flags)

    agg = _aggregate(cand)
    delta = decision.mean_diff if decision is not None else None
    if inc_runs and not settings.smoke and any(r.ok for r in inc_runs):
        ok_runs = [r for r in inc_runs if r.ok]
        session.append(_row(run_id, inc_short, "floor", _aggregate(ok_runs), settings, harness_ok,
                            f"paired re-run for {head_short}", gitops.subject(root, inc)))
    row = _row(run_id, head_short, status, agg, settings, harness_ok, reason, description,
               delta=_f4(delta), incumbent=inc_short)
    session.append(row)
    if status in ("keep", "baseline"):
        gitops.set_incumbent(root, branch, head)

    measured = verdict.measured_floor(list(inc_scores.values()) if inc else [r.vel_err for r in cand if r.ok])
    if status in ("keep", "baseline"):
        step = f"uv run evaluate.py apply   (keep: {head_short} stays and is the incumbent)"
    elif status == "smoke":
        step = "none: smoke runs are never kept"
    elif inc:
        step = f"uv run evaluate.py apply   (git reset --hard {inc_short})"
    else:
        step = "fix train.py, commit, run again (no kept commit to reset to yet)"
    total_s = time.monotonic() - t0
    _write_json(run_dir / "experiment.json", {
        "run_id": run_id, "branch": branch, "commit": head, "incumbent": inc, "settings": asdict(settings),
        "status": status, "reason": reason, "flags": never_keep,
        "decision": asdict(decision) if decision else None, "sigma_floor": verdict.sigma_floor(list(inc_scores.values())),
        "incumbent_scores": inc_scores, "incumbent_scores_stored": stored,
        "seeds": [asdict(r) for r in cand], "incumbent_seeds": [asdict(r) for r in inc_runs],
        "row": row, "total_s": total_s,
    })
    display.summary([
        ("vel_err", _f4(agg["vel_err"])), ("standing_still", _f4(agg["standing_still"])),
        ("delta", _f4(delta)), ("noise_floor", _f4(measured) if measured is not None else f"{verdict.PRIOR_SIGMA} (prior; run uv run evaluate.py floor)"),
        ("yaw_err", _f4(agg["yaw_err"])), ("survival", None if agg["survival"] is None else f"{agg['survival']:.2f}"),
        ("torque", None if agg["torque"] is None else f"{agg['torque']:.2f}"),
        ("foot_slip", _f4(agg["foot_slip"])), ("gait", agg["gait"]),
        ("seeds", agg["seeds"]), ("seed_scores", agg["seed_scores"]), ("incumbent", inc_short or None),
        ("train_seconds", f"{agg['train_s']:.1f}"),
        ("startup_seconds", None if agg["startup_s"] is None else f"{agg['startup_s']:.1f}"),
        ("total_seconds", f"{total_s:.1f}"), ("env_steps", agg["env_steps"]),
        ("steps_per_second", int(agg["env_steps"] / agg["train_s"]) if agg["train_s"] else None),
        ("peak_mem_mb", _peak_mem_mb()), ("backend", settings.backend), ("device", settings.device),
        ("budget_s", f"{settings.budget_s:g}"), ("harness", "ok" if harness_ok else "modified"),
        ("run_id", run_id), ("commit", head_short), ("verdict", status), ("reason", reason), ("next", step),
    ])
    return 0


def _missing_seeds(have, n: int) -> list[int]:
    out, s = [], 1
    while len(out) < n:
        if s not in have:
            out.append(s)
        s += 1
    return out


def run_floor(root: Path, settings: Settings, n_seeds: int, display: Display, t0: float | None = None) -> int:
    """Re-run the incumbent on seeds it has no score for; the spread is the noise floor."""
    t0 = t0 or time.monotonic()
    gitops.check_repo(root)
    branch = gitops.branch(root)
    rows = _open_results(root / RESULTS_FILE)
    inc = gitops.incumbent(root, branch)
    if not inc:
        raise UsageError(f"no incumbent on {branch} yet: run `uv run train.py` first (that run is the baseline)")
    inc_short = gitops.short(root, inc)
    dirty = [p for _, p in gitops.dirty_paths(root) if gitops.is_harness(p)]
    harness_reasons = [f"uncommitted harness changes: {','.join(dirty)}"] if dirty else []
    if gitops.harness_differs(root, inc, "HEAD"):
        harness_reasons.append(f"HEAD's harness differs from the incumbent {inc_short}'s")
    have = verdict.incumbent_scores(rows, inc_short, settings.backend, settings.budget_s)
    seeds = _missing_seeds(have, n_seeds)
    run_id = new_run_id(root, inc_short)
    run_dir = root / RUNS_DIR / run_id
    (run_dir).mkdir(parents=True)
    train_file = run_dir / "train.py"
    train_file.write_bytes(gitops.show(root, inc, gitops.TRAIN_FILE))
    display.line(f"noise floor {run_id}: incumbent {inc_short} on seeds {seeds}")
    session = Session(root, settings, display)
    runs = [session.run_seed(train_file, s, run_dir / f"seed{s}", f"floor seed {s}") for s in seeds]
    ok = [r for r in runs if r.ok]
    status = "crash" if not ok else ("smoke" if settings.smoke else "floor")
    crashed = [f"seed {r.seed}: {r.reason}" for r in runs if not r.ok]
    reason = "; ".join(harness_reasons + session.flags + crashed) or "noise-floor re-run of the incumbent"
    harness_ok = not harness_reasons and not any(f.startswith("train.py changed harness") for f in session.flags)
    agg = _aggregate(runs)
    row = _row(run_id, inc_short, status, agg, settings, harness_ok, reason, gitops.subject(root, inc))
    session.append(row)
    all_scores = dict(have)
    if harness_ok and not settings.smoke:
        all_scores.update({r.seed: r.vel_err for r in ok})
    measured = verdict.measured_floor(list(all_scores.values()))
    _write_json(run_dir / "experiment.json", {"run_id": run_id, "kind": "floor", "incumbent": inc,
                                              "seeds": [asdict(r) for r in runs], "row": row, "scores": all_scores})
    display.summary([
        ("vel_err", _f4(agg["vel_err"])), ("standing_still", _f4(agg["standing_still"])),
        ("noise_floor", _f4(measured) if measured is not None else f"needs {verdict.MIN_FLOOR_SEEDS} seeds (have {len(all_scores)})"),
        ("sigma_used", _f4(verdict.sigma_floor(list(all_scores.values())))),
        ("seeds", len(all_scores)), ("seed_scores", results.format_seed_scores(all_scores)),
        ("survival", None if agg["survival"] is None else f"{agg['survival']:.2f}"),
        ("train_seconds", f"{agg['train_s']:.1f}"), ("total_seconds", f"{time.monotonic() - t0:.1f}"),
        ("backend", settings.backend), ("harness", "ok" if harness_ok else "modified"),
        ("run_id", run_id), ("commit", inc_short), ("verdict", status), ("reason", reason),
        ("next", "edit train.py, commit, uv run train.py > run.log 2>&1"),
    ])
    return 0


def apply_verdict(root: Path, display: Display) -> int:
    """Apply the last experiment's verdict with git: keep -> nothing; discard/crash -> reset to the incumbent."""
    gitops.check_repo(root)
    branch = gitops.branch(root)
    rows = results.read_results(root / RESULTS_FILE)
    head_short = gitops.short(root, "HEAD")
    last = next((r for r in reversed(rows) if r["commit"] == head_short and r["status"] != "floor"), None)
    if last is None:
        display.line(f"HEAD {head_short} has no experiment row in {RESULTS_FILE}: run `uv run train.py` first")
        return 1
    status = last["status"]
    if status in ("keep", "baseline"):
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


def install_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so every supervised child is killed on the way out."""
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)


def _fail(display: Display, message: str) -> int:
    display.line(f"error: {message}")
    return 2


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="uv run train.py", description="Train, score and judge HEAD's train.py.")
    p.add_argument("--train", default=gitops.TRAIN_FILE, help=argparse.SUPPRESS)
    add_run_options(p)
    args = p.parse_args(argv)
    root = Path.cwd().resolve()
    display = Display()
    install_sigterm()
    try:
        return run_experiment(root, args.train, make_settings(args), display)
    except (gitops.GitError, results.ResultsError, UsageError) as e:
        return _fail(display, str(e))
    except KeyboardInterrupt:
        display.line("interrupted: the training process was stopped; no row was written for this run")
        return 130


if __name__ == "__main__":
    sys.exit(main())
