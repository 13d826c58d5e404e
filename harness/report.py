"""The morning report: what the night's experiments found.

`uv run evaluate.py report [--json]` reads results.tsv (through harness.results) and the run
folders, draws progress.png (harness.plots) and prints a summary.

The summary (printed, and as JSON with --json) uses these keys:
  results         path of the results.tsv read
  rows            every row the harness wrote (harness.journal); rows it did not write are left out
  foreign_rows    run_ids of the rows in the file that the harness did not write (never best, never scores)
  experiments     candidate rows: baseline + keep + discard + crash (floor reruns and smoke runs not counted)
  kept, discarded, crashed, floor, smoke    rows of each status
  baseline        {run_id, commit, vel_err, held_out} of the first baseline row, or null
  best            the incumbent: the latest baseline/keep row, i.e. the commit the branch holds:
                  {run_id, commit, vel_err, held_out, description, policy (path of its best seed's policy.pt2 or null)}
  best_commit     best.commit, or null
  improvement     baseline vel_err - best vel_err in m/s (positive = better), or null
  improvement_pct the same as a percentage of the baseline, or null
  tried           [{run_id, commit, status, vel_err, delta, seed_scores, description, diff}] of every candidate row in
                  order; diff: the changed lines of its candidate.diff (train.py against its incumbent), or []
  best_breakdown  {falls, error_split} over the best run's seeds (harness.diagnose), or null
  kept_changes    [{run_id, commit, vel_err, held_out, delta, seeds, description}] in order; delta is the paired
                  difference against the incumbent of the time (negative = better); held_out is the vel_err
                  of the same seeds on a fresh panel with pushes, friction, mass and observation noise
                  that training never saw (harness.scoring held-out), or null
  noise_floor     seed-to-seed standard deviation of the incumbent's vel_err (harness.verdict.noise_floor),
                  or null below harness.verdict.MIN_FLOOR_SEEDS seeds
  noise_floor_rule   the single-run sd the keep/discard rule assumes at least (harness.verdict.sigma_floor), or null
  noise_floor_seeds  how many seeds of the incumbent the floor is measured on
  compute         {env_steps, train_seconds, train_hours} over every row
  crashes         [{run_id, commit, reason, description}]
  last            {run_id, status, vel_err, delta, reason} of the last row, or null
  missing_runs    run_ids whose folder under runs/ is missing (skipped)
  progress_png    path of the plot written, or null
  warnings        human-readable problems found while reading
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness import diagnose, gitops, integrity
from harness.config import DEFAULT_TASK
from harness.plots import plot_progress
from harness.results import ResultsError, format_number as _fmt, kept_rows, number, read_results
from harness.runs import (ARTIFACT_NAME, DEFAULT_BACKEND, DEFAULT_BUDGET_S, DIFF_FILE, RESULTS_FILE, RUNS_DIR,
                          best_seed_dir)
from harness.verdict import MIN_FLOOR_SEEDS, incumbent_scores, noise_floor, sigma_floor

PROGRESS_PNG = "progress.png"

CANDIDATE_STATUSES = ("baseline", "keep", "discard", "crash")
DIFF_LINES = 8                 # changed lines the terminal report shows per experiment


# --- the summary -----------------------------------------------------------------------


def noise_floor_of(rows: list[dict[str, str]], row: dict[str, str] | None) -> dict:
    """The incumbent's noise floor as harness.verdict measures it, and the sigma its rule uses."""
    if row is None:
        return {"measured": None, "rule": None, "seeds": 0}
    backend = row.get("backend") or DEFAULT_BACKEND
    budget = number(row.get("budget_s"))
    budget = DEFAULT_BUDGET_S if budget is None else budget
    key = (rows, row.get("commit", ""), backend, budget, row.get("resources", ""), row.get("task") or DEFAULT_TASK)
    scores = list(incumbent_scores(*key).values())
    measured = noise_floor(*key)
    return {
        "measured": None if measured is None else round(measured, 6),
        "rule": round(sigma_floor(scores), 6),
        "seeds": len(scores),
    }


def summarize(rows: list[dict[str, str]], results_path: Path, runs_dir: Path) -> dict:
    """Everything the report says, as plain JSON-able values (keys documented in the module docstring)."""
    status = [r.get("status", "") for r in rows]
    warnings: list[str] = []

    baseline_row = next((r for r in rows if r.get("status") == "baseline"), None)
    best_row = (kept_rows(rows, scored=True) or [None])[-1]
    kept_changes = []
    for r in rows:
        if r.get("status") == "keep":
            kept_changes.append(
                {
                    "run_id": r.get("run_id", ""),
                    "commit": r.get("commit", ""),
                    "vel_err": number(r.get("vel_err")),
                    "held_out": number(r.get("held_out")),
                    "delta": number(r.get("delta")),
                    "seeds": int(number(r.get("seeds")) or 0),
                    "description": r.get("description", ""),
                }
            )

    tried = [
        {
            "run_id": r.get("run_id", ""), "commit": r.get("commit", ""), "status": r.get("status", ""),
            "vel_err": number(r.get("vel_err")), "delta": number(r.get("delta")),
            "seed_scores": r.get("seed_scores", ""), "description": r.get("description", ""),
            "diff": _changed_lines(runs_dir / r.get("run_id", "") / DIFF_FILE),
        }
        for r in rows if r.get("status") in CANDIDATE_STATUSES
    ]

    missing = []
    for r in rows:
        run_id = r.get("run_id", "")
        if run_id and not (runs_dir / run_id).is_dir() and run_id not in missing:
            missing.append(run_id)
    if missing:
        warnings.append(f"{len(missing)} run folder(s) missing under {runs_dir} (skipped): {', '.join(missing)}")

    best = best_breakdown = None
    if best_row is not None:
        policy = None
        run_dir = runs_dir / best_row.get("run_id", "")
        best_breakdown = _breakdown(run_dir)
        if run_dir.is_dir():
            seed_dir = best_seed_dir(run_dir, best_row)
            policy = str(seed_dir / ARTIFACT_NAME) if seed_dir else None
            if policy is None:
                warnings.append(f"the best run {best_row.get('run_id')} has no {ARTIFACT_NAME} under {run_dir}")
        best = {
            "run_id": best_row.get("run_id", ""),
            "commit": best_row.get("commit", ""),
            "vel_err": number(best_row.get("vel_err")),
            "held_out": number(best_row.get("held_out")),
            "description": best_row.get("description", ""),
            "policy": policy,
        }
    baseline = None
    if baseline_row is not None:
        baseline = {
            "run_id": baseline_row.get("run_id", ""),
            "commit": baseline_row.get("commit", ""),
            "vel_err": number(baseline_row.get("vel_err")),
            "held_out": number(baseline_row.get("held_out")),
        }

    improvement = improvement_pct = None
    if baseline and best and baseline["vel_err"] is not None and best["vel_err"] is not None:
        improvement = round(baseline["vel_err"] - best["vel_err"], 6)
        if baseline["vel_err"] > 0:
            improvement_pct = round(100.0 * improvement / baseline["vel_err"], 2)

    env_steps = sum(int(number(r.get("env_steps")) or 0) for r in rows)
    train_seconds = sum(number(r.get("train_s")) or 0.0 for r in rows)

    last = None
    if rows:
        r = rows[-1]
        last = {
            "run_id": r.get("run_id", ""),
            "status": r.get("status", ""),
            "vel_err": number(r.get("vel_err")),
            "delta": number(r.get("delta")),
            "reason": r.get("reason", ""),
        }

    floor = noise_floor_of(rows, best_row)
    return {
        "results": str(results_path),
        "rows": len(rows),
        "experiments": sum(s in CANDIDATE_STATUSES for s in status),
        "kept": status.count("keep"),
        "discarded": status.count("discard"),
        "crashed": status.count("crash"),
        "floor": status.count("floor"),
        "smoke": status.count("smoke"),
        "baseline": baseline,
        "best": best,
        "best_commit": best["commit"] if best else None,
        "improvement": improvement,
        "improvement_pct": improvement_pct,
        "tried": tried,
        "best_breakdown": best_breakdown,
        "kept_changes": kept_changes,
        "noise_floor": floor["measured"],
        "noise_floor_rule": floor["rule"],
        "noise_floor_seeds": floor["seeds"],
        "compute": {
            "env_steps": env_steps,
            "train_seconds": round(train_seconds, 1),
            "train_hours": round(train_seconds / 3600.0, 3),
        },
        "crashes": [
            {
                "run_id": r.get("run_id", ""),
                "commit": r.get("commit", ""),
                "reason": r.get("reason", ""),
                "description": r.get("description", ""),
            }
            for r in rows
            if r.get("status") == "crash"
        ],
        "last": last,
        "missing_runs": missing,
        "progress_png": None,
        "warnings": warnings,
    }

def _changed_lines(diff_path: Path) -> list[str]:
    """The + and - lines of a unified diff (no file headers), or [] when there is none."""
    try:
        text = diff_path.read_text(errors="replace")
    except OSError:
        return []
    return [ln for ln in text.splitlines() if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]


def _breakdown(run_dir: Path) -> dict | None:
    """The summary's falls and error split over a run's scored seeds (their metrics.json), or None."""
    found = []
    for path in sorted(run_dir.glob("seed*/metrics.json")):
        try:
            found.append(json.loads(path.read_text())["breakdown"])
        except (OSError, ValueError, KeyError):
            continue
    return diagnose.summary_values(found) if found else None


def _held(row: dict) -> str:
    """'   held-out 0.1400 (+0.0300)': the held-out score and its gap to the panel score, or ''."""
    if row.get("held_out") is None or row.get("vel_err") is None:
        return ""
    return f"   held-out {_fmt(row['held_out'])} ({_fmt(row['held_out'] - row['vel_err'], signed=True)})"


def format_summary(s: dict) -> str:
    """The terminal report."""
    lines = [f"results      {s['results']}  ({s['rows']} rows)"]
    if s["rows"] == 0:
        lines.append("experiments  none yet: run `uv run train.py` to score the baseline first")
        lines += [f"warning      {w}" for w in s["warnings"]]
        if s["progress_png"]:
            lines.append(f"progress     {s['progress_png']}")
        return "\n".join(lines)
    extras = []
    if s["floor"]:
        extras.append(f"{s['floor']} noise-floor rerun(s)")
    if s["smoke"]:
        extras.append(f"{s['smoke']} smoke run(s)")
    lines.append(
        f"experiments  {s['experiments']} run: {s['kept']} kept, {s['discarded']} discarded, {s['crashed']} crashed"
        + (f"   (+ {', '.join(extras)})" if extras else "")
    )
    b, best = s["baseline"], s["best"]
    if b:
        lines.append(f"baseline     {_fmt(b['vel_err'])} m/s  commit {b['commit']}{_held(b)}")
    else:
        lines.append("baseline     - (no baseline row with a score yet)")
    if best:
        imp = ""
        if s["improvement"] is not None:
            pct = f" ({s['improvement_pct']:.1f} % lower)" if s["improvement_pct"] is not None else ""
            imp = f"   improvement {_fmt(s['improvement'])} m/s{pct}"
        lines.append(f"best         {_fmt(best['vel_err'])} m/s  commit {best['commit']}{imp}{_held(best)}")
    elif s["crashed"] and s["crashed"] == s["experiments"] and not s["smoke"]:
        lines.append("best         - (nothing has scored yet: every run crashed)")
    else:
        lines.append("best         - (no baseline or kept run has scored yet; smoke and floor runs never count)")
    floor, rule, n = s["noise_floor"], s["noise_floor_rule"], s["noise_floor_seeds"]
    if floor is not None:
        lines.append(f"noise floor  ±{_fmt(floor)} m/s: seed-to-seed std of the incumbent over {n} seeds"
                     f" (the verdict assumes at least {_fmt(rule)})")
    elif best:
        lines.append(f"noise floor  - (measured from {MIN_FLOOR_SEEDS} seeds of the incumbent, it has {n}: `uv run evaluate.py floor`;"
                     f" the verdict assumes at least {_fmt(rule)})")
    if s["best_breakdown"]:
        lines.append(f"best's falls {s['best_breakdown']['falls']}")
        lines.append(f"best's error {s['best_breakdown']['error_split']}   (uv run evaluate.py diagnose for more)")
    if len(s["tried"]) > 1:
        lines.append(f"tried        each experiment, and its change to train.py (runs/<run_id>/{DIFF_FILE})")
        for t in s["tried"]:
            lines.append(f"  {t['status']:<8} {_fmt(t['vel_err'])}  {_fmt(t['delta'], signed=True):>8}  {t['commit']:<8} "
                         f"{t['description'][:60]}   seeds {t['seed_scores']}")
            lines += [f"{'':>12}{ln[:100]}" for ln in t["diff"][:DIFF_LINES]]
            if len(t["diff"]) > DIFF_LINES:
                lines.append(f"{'':>12}(+{len(t['diff']) - DIFF_LINES} more changed lines)")
    if s["kept_changes"]:
        lines.append("kept changes (delta: paired vs the incumbent of the time, negative = better; held-out)")
        for k in s["kept_changes"]:
            lines.append(
                f"  {_fmt(k['delta'], signed=True):>8}  {_fmt(k['vel_err'])}  {_fmt(k['held_out'])}  {k['commit']:<8} "
                f"{k['description']}"
            )
    else:
        lines.append("kept changes none")
    if s["crashes"]:
        lines.append("crashes" + (" (latest 5)" if len(s["crashes"]) > 5 else ""))
        for c in s["crashes"][-5:]:
            lines.append(f"  {c['commit']:<8} {c['reason'][:60]:<60}  {c['description'][:50]}")
        if len(s["crashes"]) > 5:
            lines.append(f"  ... and {len(s['crashes']) - 5} earlier")
    last = s["last"]
    if last:
        why = f"  ({last['reason'][:70]})" if last["reason"] else ""
        lines.append(f"last run     {last['run_id']}  {last['status']}  vel_err {_fmt(last['vel_err'])}{why}")
    c = s["compute"]
    lines.append(f"compute      {c['env_steps']:,} env steps, {c['train_hours']:.2f} h of training")
    if best:
        lines.append(f"best commit  {best['commit']}" + (f"   policy {best['policy']}" if best["policy"] else ""))
    if s["progress_png"]:
        lines.append(f"progress     {s['progress_png']}")
    for w in s["warnings"]:
        lines.append(f"warning      {w}")
    return "\n".join(lines)

# --- CLI -------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="evaluate.py report",
        description="Summarise results.tsv: progress.png, the kept changes, compute, and the best commit.",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON (keys: see harness/report.py)")
    p.add_argument("--results", type=Path, default=Path(RESULTS_FILE),
                   help="results.tsv to read (default: the one in the current directory, as `uv run train.py` writes)")
    p.add_argument("--runs", type=Path, default=None, help="run folders (default: runs/ next to results.tsv)")
    p.add_argument("--out", type=Path, default=None, help="progress plot (default: progress.png next to results.tsv)")
    p.add_argument("--no-plot", action="store_true", help="skip progress.png (faster, for agents)")
    return p


def _trusted(rows: list[dict[str, str]], results_path: Path) -> tuple[list[dict], list[dict]]:
    """(rows the harness journaled, rows it did not); every row counts where there is no journal."""
    try:
        return integrity.trusted_rows(results_path.resolve().parent, rows)
    except (OSError, gitops.GitError):  # not in a git checkout: no journal to ask
        return rows, []


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    results_path = args.results
    runs_dir = args.runs or results_path.parent / RUNS_DIR
    png_path = args.out or results_path.parent / PROGRESS_PNG
    try:
        rows = read_results(results_path)
    except ResultsError as exc:
        msg = f"report: cannot read {results_path}: {exc}"
        if args.json:
            print(json.dumps({"error": msg}))
        print(msg, file=sys.stderr)
        return 1

    rows, foreign = _trusted(rows, results_path)
    summary = summarize(rows, results_path, runs_dir)
    summary["foreign_rows"] = [r.get("run_id", "") for r in foreign]
    if foreign:
        summary["warnings"].append(f"{len(foreign)} row(s) not written by the harness, left out of everything above: "
                                   + ", ".join(summary["foreign_rows"]))
    if not results_path.exists():
        summary["warnings"].append(f"no {results_path} yet: the harness creates it with the first run")
    if not args.no_plot:
        try:
            summary["progress_png"] = str(plot_progress(rows, summary, png_path, runs_dir))
        except Exception as exc:  # a broken plot must not hide the numbers
            summary["warnings"].append(f"could not draw {png_path}: {exc!r}")
    try:
        print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    except BrokenPipeError:  # `report | head`: the reader left early
        sys.stderr.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
