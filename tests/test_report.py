"""The morning report: summary numbers, JSON keys, progress.png and per-seed curves on synthetic nights."""

import csv
import json
import math

import numpy as np
import pytest
from PIL import Image

from harness import plots, report, verdict
from harness.results import COLUMNS

JSON_KEYS = {
    "results", "rows", "experiments", "kept", "discarded", "crashed", "floor", "smoke", "baseline", "best",
    "best_commit", "improvement", "improvement_pct", "tried", "best_breakdown", "kept_changes", "noise_floor", "noise_floor_rule",
    "noise_floor_seeds", "compute", "crashes", "last", "missing_runs", "progress_png", "warnings", "foreign_rows",
}


def row(i, status, commit, vel_err=None, delta=None, scores=None, desc="", reason="", seeds=None, env_steps=3_000_000,
        held_out=None):
    """One results.tsv row per the layout's schema; scores: {seed: vel_err or None}."""
    scores = scores or {}
    return {
        "run_id": f"20261122-0{i:02d}000-{commit}", "timestamp": f"2026-11-22T0{i % 10}:00:00Z", "commit": commit,
        "status": status, "vel_err": "" if vel_err is None else f"{vel_err:.4f}",
        "delta": "" if delta is None else f"{delta:+.4f}", "yaw_err": "0.2000", "survival": "0.9000",
        "torque": "3.1000", "foot_slip": "0.0500", "gait": "ok", "env_steps": str(env_steps * max(1, len(scores))),
        "train_s": f"{300.0 * max(1, len(scores)):.1f}", "seeds": str(seeds if seeds is not None else len(scores)),
        "seed_scores": ";".join(f"{s}:{'crash' if v is None else f'{v:.4f}'}" for s, v in scores.items()),
        "incumbent": "", "backend": "mujoco", "budget_s": "300", "harness": "ok", "reason": reason,
        "description": desc, "held_out": "" if held_out is None else f"{held_out:.4f}", "resources": "2 cpu (X)",
        "task": "flat",
    }


def write_results(path, rows):
    with open(path, "w") as f:
        f.write("\t".join(COLUMNS) + "\n")
        for r in rows:
            f.write("\t".join(r[c] for c in COLUMNS) + "\n")
    return path


def write_curves(seed_dir, final_err, columns=None, n=40):
    seed_dir.mkdir(parents=True, exist_ok=True)
    columns = columns or ["elapsed_s", "env_steps", "reward", "vel_err", "lr", "rew/track_lin_vel_xy", "rew/torques"]
    with open(seed_dir / "curves.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for k in range(n):
            s = k / (n - 1)
            values = {"elapsed_s": 300 * s, "env_steps": int(3e6 * s), "reward": -0.2 + s,
                      "vel_err": 0.7 - (0.7 - final_err) * s, "lr": 1e-3 * math.exp(-s),
                      "rew/track_lin_vel_xy": 0.5 * s, "rew/torques": -0.05 * s, "kl": 0.01, "entropy": 10 - s}
            w.writerow([values.get(c, 0.1 * s) for c in columns])
    return seed_dir / "curves.csv"


def night(tmp_path):
    """baseline, a keep, discards, a crash, floor reruns and a smoke run; one run folder missing."""
    rows = [
        row(1, "baseline", "aaaaaaa", 0.3100, scores={1: 0.30, 2: 0.32, 3: 0.31}, desc="baseline PPO"),
        row(2, "discard", "bbbbbbb", 0.3500, 0.0400, scores={1: 0.35}, desc="lower lr"),
        row(3, "crash", "ccccccc", scores={1: None}, desc="bigger net", reason="nan"),
        row(4, "keep", "ddddddd", 0.2500, -0.0600, scores={1: 0.24, 2: 0.26, 3: 0.25}, desc="add feet air-time reward",
            held_out=0.3300),
        row(5, "floor", "ddddddd", 0.2600, scores={4: 0.27, 5: 0.25}),
        row(6, "discard", "eeeeeee", 0.2700, 0.0100, scores={1: 0.25, 2: 0.29}, desc="gamma 0.995"),
        row(7, "smoke", "fffffff", 0.6000, scores={1: 0.60}, desc="smoke test"),
    ]
    results = write_results(tmp_path / "results.tsv", rows)
    runs = tmp_path / "runs"
    for r in rows:
        if r["commit"] == "eeeeeee":
            continue  # its folder is missing
        for seed, v in report_scores(r).items():
            sd = runs / r["run_id"] / f"seed{seed}"
            write_curves(sd, v if v is not None else 0.7)
            (sd / "policy.pt2").write_bytes(b"not a real policy")
    return results, rows


def report_scores(r):
    from harness.results import parse_seed_scores

    return parse_seed_scores(r["seed_scores"])


def run_report(capsys, results, *extra):
    rc = report.main(["--results", str(results), *extra])
    out = capsys.readouterr()
    return rc, out.out, out.err


def assert_nontrivial_png(path, min_bytes=20_000):
    assert path.is_file(), path
    assert path.stat().st_size > min_bytes, path.stat().st_size
    pixels = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 500
    assert pixels.std() > 10.0  # not a blank canvas


# --- a normal night ----------------------------------------------------------------------


def test_json_summary_of_a_normal_night(tmp_path, capsys):
    results, rows = night(tmp_path)
    rc, out, err = run_report(capsys, results, "--json")
    assert rc == 0, err
    s = json.loads(out)
    assert set(s) == JSON_KEYS
    assert (s["rows"], s["experiments"], s["kept"], s["discarded"], s["crashed"], s["floor"], s["smoke"]) == (
        7, 5, 1, 2, 1, 1, 1)
    assert s["baseline"] == {"run_id": rows[0]["run_id"], "commit": "aaaaaaa", "vel_err": 0.31, "held_out": None}
    assert s["best"]["commit"] == s["best_commit"] == "ddddddd"
    assert s["best"]["vel_err"] == 0.25 and s["best"]["held_out"] == 0.33
    assert s["improvement"] == pytest.approx(0.06)
    assert s["improvement_pct"] == pytest.approx(100 * 0.06 / 0.31, abs=0.01)
    assert s["best"]["policy"].endswith(f"{rows[3]['run_id']}/seed1/policy.pt2")  # seed 1 scored best (0.24)
    assert s["kept_changes"] == [{"run_id": rows[3]["run_id"], "commit": "ddddddd", "vel_err": 0.25, "held_out": 0.33,
                                  "delta": -0.06, "seeds": 3, "description": "add feet air-time reward"}]
    # the incumbent's seeds: 0.24, 0.26, 0.25 (keep) + 0.27, 0.25 (floor)
    assert s["noise_floor_seeds"] == 5
    assert s["noise_floor"] == pytest.approx(float(np.std([0.24, 0.26, 0.25, 0.27, 0.25], ddof=1)), abs=1e-6)
    # the rule never assumes less than MIN_REL_SD of the incumbent's score (its 5 seeds average 0.254)
    assert s["noise_floor"] < s["noise_floor_rule"] == pytest.approx(verdict.MIN_REL_SD * 0.254, abs=1e-6)
    steps = sum(int(r["env_steps"]) for r in rows)
    assert s["compute"]["env_steps"] == steps
    assert s["compute"]["train_hours"] == pytest.approx(sum(float(r["train_s"]) for r in rows) / 3600, abs=1e-3)
    assert s["crashes"] == [{"run_id": rows[2]["run_id"], "commit": "ccccccc", "reason": "nan",
                             "description": "bigger net"}]
    assert s["last"]["status"] == "smoke"
    assert s["missing_runs"] == [rows[5]["run_id"]]
    assert any("missing" in w and rows[5]["run_id"] in w for w in s["warnings"])
    assert s["progress_png"] == str(tmp_path / "progress.png")
    assert_nontrivial_png(tmp_path / "progress.png")


def test_terminal_summary_names_the_kept_changes_compute_and_best_commit(tmp_path, capsys):
    results, rows = night(tmp_path)
    rc, out, _ = run_report(capsys, results, "--no-plot")
    assert rc == 0
    assert "5 run: 1 kept, 2 discarded, 1 crashed" in out
    assert "0.3100" in out and "0.2500" in out and "improvement 0.0600" in out
    assert "-0.0600" in out and "add feet air-time reward" in out
    assert f"{sum(int(r['env_steps']) for r in rows):,} env steps" in out
    assert "best commit  ddddddd" in out
    assert "held-out 0.3300 (+0.0800)" in out        # the held-out score and its gap to the panel's
    assert "missing" in out and rows[5]["run_id"] in out
    assert not (tmp_path / "progress.png").exists()  # --no-plot


def test_progress_png_changes_with_the_night(tmp_path, capsys):
    """The plot shows the data: a night with an extra keep draws a different picture."""
    results, rows = night(tmp_path)
    out_a, out_b = tmp_path / "a.png", tmp_path / "b.png"
    rc, out, _ = run_report(capsys, results, "--out", str(out_a), "--json")
    assert rc == 0 and json.loads(out)["kept"] == 1
    rows.append(row(8, "keep", "ggggggg", 0.1500, -0.1000, scores={1: 0.14, 2: 0.16, 3: 0.15}, desc="curriculum"))
    write_results(results, rows)
    rc, out, _ = run_report(capsys, results, "--out", str(out_b), "--json")
    assert rc == 0 and json.loads(out)["kept"] == 2 and json.loads(out)["best_commit"] == "ggggggg"
    a = np.asarray(Image.open(out_a).convert("L"), dtype=np.float64)
    b = np.asarray(Image.open(out_b).convert("L"), dtype=np.float64)
    assert a.shape != b.shape or np.abs(a - b).mean() > 0.5


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize("content", [None, "", "\t".join(COLUMNS) + "\n"], ids=["absent", "zero-byte", "header-only"])
def test_empty_results_give_a_sensible_report(tmp_path, capsys, content):
    results = tmp_path / "results.tsv"
    if content is not None:
        results.write_text(content)
    rc, out, err = run_report(capsys, results, "--json")
    assert rc == 0, err
    s = json.loads(out)
    assert set(s) == JSON_KEYS
    assert (s["rows"], s["experiments"], s["kept"]) == (0, 0, 0)
    assert s["best"] is None and s["baseline"] is None and s["improvement"] is None and s["noise_floor"] is None
    assert s["compute"] == {"env_steps": 0, "train_seconds": 0.0, "train_hours": 0.0}
    assert_nontrivial_png(tmp_path / "progress.png", min_bytes=5_000)
    rc, out, _ = run_report(capsys, results, "--no-plot")
    assert rc == 0 and "none yet" in out and "Traceback" not in out


def test_all_crash_night(tmp_path, capsys):
    rows = [row(i, "crash", f"c{i:06d}", scores={1: None}, desc=f"idea {i}", reason="hang") for i in range(1, 5)]
    results = write_results(tmp_path / "results.tsv", rows)
    rc, out, err = run_report(capsys, results, "--json")
    assert rc == 0, err
    s = json.loads(out)
    assert (s["experiments"], s["crashed"], s["kept"]) == (4, 4, 0)
    assert s["best"] is None and s["best_commit"] is None and s["improvement"] is None
    assert [c["reason"] for c in s["crashes"]] == ["hang"] * 4
    assert len(s["missing_runs"]) == 4  # no run folders at all: reported, not fatal
    assert_nontrivial_png(tmp_path / "progress.png", min_bytes=5_000)
    rc, out, _ = run_report(capsys, results, "--no-plot")
    assert rc == 0 and "every run crashed" in out


def test_corrupt_file_names_the_line(tmp_path, capsys):
    results, rows = night(tmp_path)
    lines = results.read_text().splitlines(keepends=True)
    lines[3] = "this\tline\tis\tbroken\n"  # line 4 of the file
    results.write_text("".join(lines))
    rc, out, err = run_report(capsys, results)
    assert rc == 1
    assert f"{results}:4:" in err and "Traceback" not in err
    rc, out, err = run_report(capsys, results, "--json")
    assert rc == 1 and f"{results}:4:" in json.loads(out)["error"]


# --- per-seed training curves ---------------------------------------------------------------


def test_plot_curves_draws_every_logged_scalar(tmp_path):
    csv_path = write_curves(tmp_path / "run" / "seed1", 0.2,
                            columns=["elapsed_s", "env_steps", "reward", "vel_err", "lr", "kl", "entropy",
                                     "value_loss", "my_extra", "rew/a", "rew/b", "rew/c"])
    png = plots.plot_curves(csv_path, tmp_path / "run" / "seed1" / "curves.png")
    assert_nontrivial_png(png)


@pytest.mark.parametrize(
    "text",
    [
        "elapsed_s,env_steps,reward\n1,100,0.1\n2,200,0.3\n3,300,0.2\n",             # no vel_err, lr, terms
        "env_steps,vel_err,rew/x\n100,0.7,\n200,nan,0.1\n300,0.5,oops\n400,0.4,0.2\n",  # gaps, NaN, garbage
        "reward,vel_err\n0.1,0.7\n0.2,0.6\n",                                        # no x column at all
        "elapsed_s,env_steps\n",                                                    # header only
        "",                                                                         # empty file
    ],
    ids=["missing-columns", "gaps-and-garbage", "no-x-column", "header-only", "empty"],
)
def test_plot_curves_is_robust_to_partial_csvs(tmp_path, text):
    csv_path = tmp_path / "curves.csv"
    csv_path.write_text(text)
    png = plots.plot_curves(csv_path, tmp_path / "curves.png")
    assert_nontrivial_png(png, min_bytes=5_000)


def test_plot_curves_without_a_csv_still_writes_a_png(tmp_path):
    png = plots.plot_curves(tmp_path / "absent.csv", tmp_path / "out" / "curves.png")
    assert_nontrivial_png(png, min_bytes=5_000)


def test_read_curves_turns_blanks_and_garbage_into_nan(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("env_steps,reward,rew/x\n100,0.5,\n200,bad,0.25\n")
    table = plots.read_curves(p)
    assert table["env_steps"] == [100.0, 200.0]
    assert table["reward"][0] == 0.5 and math.isnan(table["reward"][1])
    assert math.isnan(table["rew/x"][0]) and table["rew/x"][1] == 0.25


def test_every_experiment_is_listed_with_its_change_and_the_best_with_its_falls(tmp_path, capsys):
    results, rows = night(tmp_path)
    runs = tmp_path / "runs"
    (runs / rows[1]["run_id"] / "candidate.diff").write_text(
        "diff --git a/train.py b/train.py\n--- a/train.py\n+++ b/train.py\n@@ -1 +1 @@\n"
        "-LEARNING_RATE = 1e-3\n+LEARNING_RATE = 3e-4\n")
    breakdown = {"share": {"after_fall": 0.3, "switch_0_0.5s": 0.2, "switch_0.5_2s": 0.1, "steady": 0.4},
                 "falls": 5, "falls_since_switch": {"0-0.5s": 1, "0.5-2s": 3, "2s+": 1}}
    for seed in (1, 2, 3):
        (runs / rows[3]["run_id"] / f"seed{seed}" / "metrics.json").write_text(json.dumps({"breakdown": breakdown}))
    rc, out, _ = run_report(capsys, results, "--json")
    s = json.loads(out)
    assert [t["status"] for t in s["tried"]] == ["baseline", "discard", "crash", "keep", "discard"]
    assert s["tried"][1]["diff"] == ["-LEARNING_RATE = 1e-3", "+LEARNING_RATE = 3e-4"] and s["tried"][2]["diff"] == []
    assert s["best_breakdown"]["falls"].startswith("15 over 3 seed(s), 12 of them within 2 s")
    rc, out, _ = run_report(capsys, results)
    assert rc == 0
    lines = out.splitlines()
    at = next(i for i, ln in enumerate(lines) if "lower lr" in ln)
    assert lines[at + 1].strip() == "-LEARNING_RATE = 1e-3" and lines[at + 2].strip() == "+LEARNING_RATE = 3e-4"
    assert "seeds 1:0.3500" in lines[at]
    assert any(ln.startswith("best's error after_fall 30%") for ln in lines)
