"""The night's plots: progress.png (every experiment's vel_err, the running best, kept changes, the
noise floor) and one seed's training curves (curves.png, drawn at the end of every seed).

matplotlib only (no pyplot state), so the orchestrator imports it without the report.
"""

from __future__ import annotations

import csv
import math
import textwrap
from pathlib import Path

from matplotlib.figure import Figure

from harness.results import KEPT, format_number as _fmt, kept_rows, number, parse_seed_scores

# One palette for every plot, so a keep looks like a keep everywhere.
COLOR_KEEP = "#1b9e5a"
COLOR_BASELINE = "#1f4e9c"
COLOR_DISCARD = "#8c8c8c"
COLOR_CRASH = "#d62728"
COLOR_FLOOR = "#7b4fa6"
COLOR_SMOKE = "#a8a8a8"
COLOR_BEST_LINE = "#0b6b3a"


# --- progress.png ----------------------------------------------------------------------


def _standing_still_error() -> float | None:
    try:
        from harness.panel import make_panel, standing_still_error

        return standing_still_error(make_panel())
    except Exception:  # a reference line only; the report must not depend on it
        return None


def _short(text: str, width: int = 38) -> str:
    return textwrap.shorten(text or "(no description)", width=width, placeholder="…")


def plot_progress(rows: list[dict[str, str]], summary: dict, png_path: Path, runs_dir: Path) -> Path:
    """vel_err of every experiment in order, the running best, kept changes and the noise floor."""
    curves = _kept_curves(rows, runs_dir)
    fig = Figure(figsize=(13, 8.6 if curves else 6.2), dpi=110, layout="constrained")
    if curves:
        ax, ax_curves = fig.subplots(2, 1, height_ratios=[1.75, 1])
    else:
        ax, ax_curves = fig.subplots(1, 1), None

    s = summary
    head = f"{s['experiments']} experiments: {s['kept']} kept, {s['discarded']} discarded, {s['crashed']} crashed"
    if s["best"] and s["improvement"] is not None:
        head += (
            f"   |   vel_err: baseline {_fmt(s['baseline']['vel_err'], 3)} → best {_fmt(s['best']['vel_err'], 3)} m/s"
            + (f" ({-s['improvement_pct']:+.1f} %)" if s["improvement_pct"] is not None else "")
        )
    fig.suptitle(f"Autoresearch progress — {head}", fontsize=12, fontweight="bold")
    _draw_progress(ax, rows, s)
    if ax_curves is not None:
        _draw_kept_curves(ax_curves, curves)
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path)
    return png_path


def _draw_progress(ax, rows: list[dict[str, str]], s: dict) -> None:
    ax.set_xlabel("experiment # (row of results.tsv)")
    ax.set_ylabel("vel_err (m/s, lower is better)")
    ax.grid(True, alpha=0.25)
    if not rows:
        ax.text(0.5, 0.5, "no experiments yet\nrun `uv run train.py` to score the baseline",
                ha="center", va="center", transform=ax.transAxes, fontsize=14, color="#555555")
        ax.set_xticks([])
        ax.set_yticks([])
        return

    xs = list(range(1, len(rows) + 1))
    scores = [number(r.get("vel_err")) for r in rows]
    status = [r.get("status", "") for r in rows]
    scored = [v for v in scores if v is not None]
    # every seed's own score (the row's vel_err is their mean): the scatter a verdict weighs
    seed_pts = [(x, v) for x, r in zip(xs, rows) for v in parse_seed_scores(r.get("seed_scores") or "").values()
                if isinstance(v, float)]
    # the y range follows the real experiments and their seeds; a smoke run (short budget) may fall outside it
    ranged = [v for v, st in zip(scores, status) if v is not None and st != "smoke"] or scored
    ranged += [v for (x, v) in seed_pts if status[x - 1] != "smoke"]
    still = _standing_still_error()

    # Running best: the incumbent's vel_err, stepping at each baseline/keep.
    best_x, best_y, current = [], [], None
    for x, st, v in zip(xs, status, scores):
        if st in KEPT and v is not None:
            current = v
        if current is not None:
            best_x.append(x)
            best_y.append(current)
    floor, floor_label = s.get("noise_floor"), "noise floor ±{:.3f} (std over {} seeds)"
    if floor is None and s.get("noise_floor_rule"):
        floor, floor_label = s["noise_floor_rule"], "noise floor ±{:.3f} (prior; {} seeds measured)"
    if best_x:
        # extend the last step to the right edge so the incumbent's level reads across
        bx, by = best_x + [best_x[-1] + 0.5], best_y + [best_y[-1]]
        ax.step(bx, by, where="post", color=COLOR_BEST_LINE, lw=2.2, label="running best (incumbent)", zorder=3)
        if floor:
            lo = [y - floor for y in by]
            hi = [y + floor for y in by]
            ax.fill_between(bx, lo, hi, step="post", color=COLOR_KEEP, alpha=0.13, lw=0,
                            label=floor_label.format(floor, s.get("noise_floor_seeds", 0)), zorder=1)

    def scatter(sel, **kw):
        pts = [(x, v) for x, st, v in zip(xs, status, scores) if sel(st) and v is not None]
        if pts:
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], **kw)

    if seed_pts:
        ax.scatter([p[0] for p in seed_pts], [p[1] for p in seed_pts], s=10, color="#404040", alpha=0.4, lw=0,
                   label="one seed's score", zorder=2)
    scatter(lambda st: st == "discard", s=26, color=COLOR_DISCARD, alpha=0.35, lw=0, label="discard", zorder=2)
    scatter(lambda st: st == "smoke", s=30, marker="^", color=COLOR_SMOKE, alpha=0.9, lw=0,
            label="smoke (never kept)", zorder=2)
    scatter(lambda st: st == "floor", s=34, facecolors="none", edgecolors=COLOR_FLOOR, lw=1.2,
            label="noise-floor rerun", zorder=4)
    scatter(lambda st: st == "keep", s=70, color=COLOR_KEEP, edgecolors="white", lw=0.8, label="keep", zorder=5)
    scatter(lambda st: st == "baseline", s=150, marker="*", color=COLOR_BASELINE, edgecolors="white", lw=0.6,
            label="baseline", zorder=5)

    # y range: the scored runs, plus room above for crash markers
    if ranged:
        lo, hi = min(ranged), max(ranged)
    else:
        lo, hi = (0.0, still or 0.7)
    if still is not None and hi >= still * 0.8:  # near or above standing still: show that reference
        lo, hi = min(lo, still), max(hi, still)
    pad = max(0.02, 0.08 * (hi - lo))
    ax.set_ylim(max(0.0, lo - pad), hi + 2.2 * pad)
    # room on the right for the last kept change's label
    ax.set_xlim(0.3, len(rows) + max(1.5, 0.12 * len(rows)))
    if still is not None and ax.get_ylim()[0] < still < ax.get_ylim()[1]:
        ax.axhline(still, color="#b58900", ls="--", lw=1, alpha=0.8, zorder=1)
        ax.text(0.995, still, "standing still ", transform=ax.get_yaxis_transform(), ha="right", va="bottom",
                fontsize=8, color="#b58900")

    # crashes have no score: mark them along the top edge
    crash_x = [x for x, st, v in zip(xs, status, scores) if st == "crash" or (v is None and st != "smoke")]
    if crash_x:
        ax.scatter(crash_x, [0.965] * len(crash_x), transform=ax.get_xaxis_transform(), marker="x", s=46,
                   color=COLOR_CRASH, lw=1.8, label="crash (no score)", zorder=6, clip_on=False)

    # annotate each kept change (and the baseline) with its description and delta
    for x, st, v, r in zip(xs, status, scores, rows):
        if st not in KEPT or v is None:
            continue
        delta = number(r.get("delta"))
        label = "baseline" if st == "baseline" else f"{_fmt(delta, 3, signed=True)}  {_short(r.get('description', ''))}"
        ax.annotate(label, (x, v), xytext=(6, 9), textcoords="offset points", rotation=22, fontsize=7.5,
                    color=COLOR_BASELINE if st == "baseline" else COLOR_BEST_LINE, ha="left", va="bottom",
                    rotation_mode="anchor", zorder=7,
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.7))

    if len(rows) <= 40:
        ax.set_xticks(xs)
    ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), borderaxespad=0.0, fontsize=8)  # outside: covers nothing
    if not scored:
        ax.text(0.5, 0.5, "no run has a score yet (every run crashed)", ha="center", va="center",
                transform=ax.transAxes, fontsize=13, color=COLOR_CRASH)


def _kept_curves(rows: list[dict[str, str]], runs_dir: Path, limit: int = 8) -> list[tuple[str, list]]:
    """(label, [(env_steps, vel_err) series per seed]) for the baseline and the last kept runs."""
    out = []
    chain = kept_rows(rows)[-limit:]
    for r in chain:
        run_dir = runs_dir / r.get("run_id", "")
        series = []
        for csv_path in sorted(run_dir.glob("seed*/curves.csv")) if run_dir.is_dir() else []:
            table = read_curves(csv_path)
            x = table.get("env_steps")
            y = table.get("vel_err")
            if x and y and any(math.isfinite(v) for v in y):
                series.append((x, y))
        if series:
            label = "baseline" if r.get("status") == "baseline" else _short(r.get("description", ""), 30)
            out.append((f"{r.get('commit', '')} {label}", series))
    return out


def _draw_kept_curves(ax, curves: list[tuple[str, list]]) -> None:
    cmap = __import__("matplotlib").colormaps["viridis"]
    n = len(curves)
    for i, (label, series) in enumerate(curves):
        color = cmap(0.1 + 0.8 * i / max(1, n - 1)) if n > 1 else COLOR_KEEP
        for j, (x, y) in enumerate(series):
            ax.plot(x, y, color=color, lw=1.3, alpha=0.85, label=label if j == 0 else None)
    ax.set_title("training tracking error of the baseline and kept runs (every seed)", fontsize=10)
    ax.set_xlabel("env steps (per seed)")
    ax.set_ylabel("training vel_err (m/s)")
    ax.grid(True, alpha=0.25)
    ax.legend(fontsize=7.5, loc="upper right", framealpha=0.9)


# --- per-seed training curves ----------------------------------------------------------


def read_curves(csv_path: Path) -> dict[str, list[float]]:
    """curves.csv as {column: values}; empty or non-numeric cells become NaN."""
    with open(csv_path, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header:
            return {}
        header = [h.strip() for h in header]
        cols: dict[str, list[float]] = {h: [] for h in header if h}
        for line in reader:
            if not line:
                continue
            for i, h in enumerate(header):
                if not h:
                    continue
                try:
                    v = float(line[i]) if i < len(line) else math.nan
                except ValueError:
                    v = math.nan
                cols[h].append(v)
    return cols


def _has_data(values: list[float] | None) -> bool:
    return bool(values) and any(math.isfinite(v) for v in values)


CURVE_PANELS = (  # (column, title, log scale) in the order a researcher reads them
    ("reward", "mean reward per step", False),
    ("vel_err", "tracking error (m/s)", False),
    ("lr", "learning rate", True),
    ("kl", "KL", True),
    ("entropy", "entropy", False),
    ("value_loss", "value loss", True),
)


def plot_curves(csv_path: str | Path, png_path: str | Path) -> Path:
    """One seed's training curves (reward, tracking error, learning rate, each reward term, ...) as a PNG.

    Columns that are missing or hold no numbers are left out; any other numeric column gets a
    panel of its own. A missing or empty CSV gives a PNG that says so. Raises nothing for content.
    """
    csv_path, png_path = Path(csv_path), Path(png_path)
    try:
        table = read_curves(csv_path) if csv_path.is_file() else {}
    except OSError:
        table = {}
    x_name = next((c for c in ("env_steps", "elapsed_s") if _has_data(table.get(c))), None)
    n = max((len(v) for v in table.values()), default=0)
    x = table[x_name] if x_name else list(range(n))

    panels = [(c, t, log) for c, t, log in CURVE_PANELS if _has_data(table.get(c))]
    known = {c for c, _, _ in CURVE_PANELS} | {"env_steps", "elapsed_s"}
    terms = sorted(c for c in table if c.startswith("rew/") and _has_data(table[c]))
    others = sorted(c for c in table if c not in known and not c.startswith("rew/") and _has_data(table[c]))
    panels += [(c, c, False) for c in others]

    ncols = 3
    nrows = max(1, math.ceil(len(panels) / ncols)) + (1 if terms else 0)
    fig = Figure(figsize=(13, 3.1 * nrows + 0.6), dpi=100, layout="constrained")
    fig.suptitle(f"training curves — {csv_path.parent.parent.name}/{csv_path.parent.name}", fontsize=12,
                 fontweight="bold")
    grid = fig.add_gridspec(nrows, ncols)
    xlabel = {"env_steps": "env steps", "elapsed_s": "training seconds"}.get(x_name or "", "log line")

    if not panels and not terms:
        ax = fig.add_subplot(grid[:, :])
        why = "no curves.csv" if not csv_path.is_file() else "curves.csv holds no numeric columns"
        ax.text(0.5, 0.5, f"{why}\n{csv_path}", ha="center", va="center", transform=ax.transAxes,
                fontsize=12, color="#555555")
        ax.set_axis_off()
    for i, (col, title, log) in enumerate(panels):
        ax = fig.add_subplot(grid[i // ncols, i % ncols])
        y = table[col]
        few = len(y) < 50  # dots too, so that points between gaps (NaN) stay visible
        ax.plot(x[: len(y)], y, color="#1f4e9c" if col != "vel_err" else COLOR_KEEP, lw=1.4,
                marker="o" if few else None, ms=2.5)
        last = next((v for v in reversed(y) if math.isfinite(v)), None)
        ax.set_title(f"{title}   (last {last:.4g})" if last is not None else title, fontsize=10)
        if log and all(v > 0 for v in y if math.isfinite(v)):
            ax.set_yscale("log")
        ax.set_xlabel(xlabel, fontsize=8)
        ax.grid(True, alpha=0.25)
        ax.tick_params(labelsize=8)
    if terms:
        ax = fig.add_subplot(grid[nrows - 1, :])
        cmap = __import__("matplotlib").colormaps["tab20"]
        for j, col in enumerate(terms):
            y = table[col]
            ax.plot(x[: len(y)], y, lw=1.3, color=cmap(j % 20), label=col[len("rew/"):],
                    marker="o" if len(y) < 50 else None, ms=2.5)
        ax.axhline(0.0, color="black", lw=0.6, alpha=0.5)
        ax.set_title("reward terms (weighted contribution per step)", fontsize=10)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.grid(True, alpha=0.25)
        ax.tick_params(labelsize=8)
        ax.legend(fontsize=7.5, loc="center left", bbox_to_anchor=(1.0, 0.5), ncols=1 if len(terms) <= 12 else 2)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path)
    return png_path
