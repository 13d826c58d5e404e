"""The fall and transient breakdown of a scored walk (harness.diagnose), on known walks and real policies."""

from __future__ import annotations

import pytest
import torch

from conftest import STAND_STILL, make_repo, run_cmd
from harness import artifact, diagnose
from harness.panel import make_panel
from harness.scoring import evaluate_policy
from test_scoring import Thighs   # +20 folds the robot over at once


def test_a_known_walk_splits_exactly():
    """Episode 0 walks 500 steps at error 1; episode 1 too until it falls at step 300 (1 s after the
    switch at 250), then is charged 2 per step. Windows after each switch: 25 steps, 75 steps, the rest."""
    panel = make_panel(episodes=2)
    b = diagnose.Breakdown(panel)
    alive = torch.tensor([True, True])
    for step in range(500):
        fell = torch.tensor([False, step == 300])
        err = torch.where(alive, torch.ones(2), torch.full((2,), 2.0))
        b.add(step, err, alive, fell)
        alive = alive & ~fell
    r = b.result(torch.tensor([1.0, (301 + 2 * 199) / 500]), alive)
    sums = {"after_fall": 2 * 199, "switch_0_0.5s": 50 + 50, "switch_0.5_2s": 150 + 101, "steady": 300 + 150}
    total = sum(sums.values())
    assert r["share"] == {k: round(v / total, 4) for k, v in sums.items()}
    assert r["mean"]["after_fall"] == 2.0 and r["mean"]["steady"] == 1.0
    assert r["falls"] == 1 and r["falls_since_switch"] == {"0-0.5s": 0, "0.5-2s": 1, "2s+": 0}
    assert r["survived_vel_err"] == 1.0


def test_command_types():
    c = torch.tensor([[0.9, 0.1, -0.2], [-0.9, 0.1, 0.0], [0.1, -0.5, 0.2], [0.1, 0.1, -0.7], [0.0, 0.0, 0.0]])
    assert [diagnose.COMMAND_TYPES[i] for i in diagnose.command_types(c)] == ["forward", "forward", "lateral", "yaw", "zero"]


def test_a_policy_that_folds_over_falls_at_the_start_and_one_that_stands_never_falls(tmp_path):
    folds = evaluate_policy(artifact.export_policy(Thighs(20.0), tmp_path / "folds.pt2"), episodes=4, steps=300)
    b = folds["breakdown"]
    assert folds["survival"] == 0.0
    assert b["falls"] == 4 and b["falls_since_switch"]["0-0.5s"] == 4    # each within 0.5 s of its start
    assert b["share"]["after_fall"] > 0.9 and b["survived_vel_err"] is None
    stands = evaluate_policy(artifact.export_policy(Thighs(0.0), tmp_path / "stands.pt2"), episodes=4, steps=300)
    b = stands["breakdown"]
    assert b["falls"] == 0 and b["share"]["after_fall"] == 0.0
    assert b["survived_vel_err"] == pytest.approx(stands["vel_err"], abs=1e-4)
    assert b["by_command"]["zero"] < 0.05 < 0.5 < b["by_command"]["forward"]   # standing: only moving commands err
    lines = diagnose.summary_values([folds["breakdown"], stands["breakdown"]])
    assert lines["falls"].startswith("4 over 2 seed(s), 4 of them within 2 s")


def test_diagnose_command_prints_the_breakdown_of_a_saved_run(tmp_path):
    repo = make_repo(tmp_path / "repo", STAND_STILL)
    p = run_cmd(repo, "train.py", "--smoke")
    assert p.returncode == 0, p.stdout + p.stderr
    run_dir = next((repo / "runs").iterdir())
    p = run_cmd(repo, "evaluate.py", "diagnose", str(run_dir))
    assert p.returncode == 0, p.stdout + p.stderr
    for phase in diagnose.PHASES:
        assert f"  {phase}" in p.stdout
    assert "falls 0:" in p.stdout and "by command: forward" in p.stdout
    assert "error_split:" in p.stdout
