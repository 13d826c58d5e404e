"""Evaluation on real MuJoCo with a shrunken panel: standing still, falls, NaN, gait flags, the held-out check."""

from __future__ import annotations

import os
import re
import shutil

import pytest
import torch

from harness import artifact, config
from harness.scoring import EvalError, evaluate_policy, gait_flags, held_out, run_held_out
from harness.panel import make_panel, standing_still_error

EPISODES, STEPS = 2, 100


class Thighs(torch.nn.Module):
    """Drives every thigh joint towards default + 0.25 * value: +20 folds the robot over, -20 lifts the front legs."""

    def __init__(self, value: float):
        super().__init__()
        self.value = value

    def forward(self, obs):
        a = torch.zeros(obs.shape[0], 12)
        a[:, 1::3] = self.value
        return a


def export(tmp_path, module, name="policy.pt2"):
    return artifact.export_policy(module, tmp_path / name)


def zero_policy():
    m = torch.nn.Linear(48, 12)
    torch.nn.init.zeros_(m.weight)
    torch.nn.init.zeros_(m.bias)
    return m


def test_standing_still_scores_the_panel_standing_error(tmp_path):
    m = evaluate_policy(export(tmp_path, zero_policy()), episodes=EPISODES, steps=STEPS)
    panel = make_panel(episodes=EPISODES)
    expected = float(torch.stack([panel.command_at(s)[:, :2].norm(dim=-1) for s in range(STEPS)]).mean())
    assert m["standing_still"] == pytest.approx(expected, rel=1e-5)
    assert m["survival"] == 1.0
    assert abs(m["vel_err"] - m["standing_still"]) < 0.1
    assert m["gait"] == "ok"
    for key in ("yaw_err", "torque", "power", "foot_slip"):
        assert m[key] >= 0.0


def test_full_panel_standing_still_is_about_0_69():
    # 90 % of segments draw (v_x, v_y) uniform on [-1, 1]^2, mean speed 0.765; the rest stand
    assert 0.66 < standing_still_error(make_panel()) < 0.72


def test_falls_are_charged_as_standing_still(tmp_path):
    m = evaluate_policy(export(tmp_path, Thighs(20.0)), episodes=EPISODES, steps=STEPS)
    assert m["survival"] == 0.0
    # after the fall every step costs ||cmd_xy||: the score cannot beat standing still by falling
    assert m["vel_err"] >= m["standing_still"] - 0.02


def test_lifted_legs_are_flagged(tmp_path):
    m = evaluate_policy(export(tmp_path, Thighs(-20.0)), episodes=EPISODES, steps=STEPS)
    assert m["survival"] == 1.0
    assert "lifted_leg" in m["gait"].split(",")


class NanOnZeroLastAction(torch.nn.Module):
    """Finite on random inputs (so it exports), 0/0 = NaN on the panel's first step (last action is 0)."""

    def forward(self, obs):
        return (obs[:, 36:37] / obs[:, 36:37]).expand(-1, 12) * 0.0


def test_nan_policy_is_a_nan_crash(tmp_path):
    path = export(tmp_path, NanOnZeroLastAction())
    with pytest.raises(EvalError, match="^nan"):
        evaluate_policy(path, episodes=EPISODES, steps=STEPS)


def test_missing_artifact_is_a_clear_error(tmp_path):
    with pytest.raises(EvalError, match="no policy artifact"):
        evaluate_policy(tmp_path / "absent.pt2", episodes=EPISODES, steps=STEPS)


def _stats(**over):
    base = dict(moving_steps=1000, alive_steps=1200, flight_steps=0, backwards_steps=0, walking_steps=800,
                foot_contact_steps=[600, 600, 600, 600], walking_contact_steps=[400, 400, 400, 400])
    base.update(over)
    return base


@pytest.mark.parametrize("over, flags", [
    ({}, []),
    ({"flight_steps": 400}, ["hopping"]),
    ({"backwards_steps": 300}, ["backwards"]),
    ({"foot_contact_steps": [600, 600, 10, 600]}, ["lifted_leg"]),
    ({"walking_contact_steps": [400, 800, 400, 400]}, ["dragged_leg"]),
    ({"walking_steps": 100, "walking_contact_steps": [100, 100, 100, 100]}, []),  # barely moving: not judged
    ({"moving_steps": 10, "flight_steps": 10}, []),                                # too few steps to judge
])
def test_gait_rules(over, flags):
    assert gait_flags(_stats(**over)) == flags


# --- the held-out check -------------------------------------------------------------------

HELD_OUT_ENV = {**os.environ, "HARNESS_PANEL_EPISODES": str(EPISODES), "HARNESS_EVAL_STEPS": str(STEPS)}


def reacting_policy():
    """Small random gains on the whole observation: its actions, so its walk, depend on what it senses."""
    torch.manual_seed(0)
    m = torch.nn.Linear(48, 12)
    with torch.no_grad():
        m.weight.mul_(0.5)
    return m


def test_held_out_nominal_is_the_main_walk_when_given_the_main_seed(tmp_path):
    # ties panel_seed to the commands walked and to the main panel's metric
    path = export(tmp_path, reacting_policy())
    r = held_out([path], seed=config.PANEL_SEED, episodes=EPISODES, steps=STEPS)
    assert r["policies"][str(path)]["by_condition"]["nominal"] == evaluate_policy(path, episodes=EPISODES, steps=STEPS)["vel_err"]


def test_held_out_conditions_change_the_walk(tmp_path):
    # 300 steps (6 s): every episode meets a push (one per 5 s, at a random phase)
    r = held_out([export(tmp_path, reacting_policy())], episodes=EPISODES, steps=300)
    by = next(iter(r["policies"].values()))["by_condition"]
    assert list(by) == r["conditions"] == list(config.HELD_OUT_CONDITIONS)
    assert len(set(by.values())) == len(by), by       # friction 0.4 vs 1.2, pushes, mass, noise: all differ


def test_held_out_is_fresh_each_call_replayable_and_shared_by_all_policies(tmp_path):
    zero = export(tmp_path, zero_policy())
    twin = shutil.copy(zero, tmp_path / "twin.pt2")
    falls = export(tmp_path, Thighs(20.0), "falls.pt2")
    a = run_held_out([zero], tmp_path / "a.json", env=HELD_OUT_ENV)
    b = run_held_out([zero], tmp_path / "b.json", env=HELD_OUT_ENV)
    assert a["panel_seed"] != b["panel_seed"] and config.PANEL_SEED not in (a["panel_seed"], b["panel_seed"])
    main, pa, pb = (make_panel(seed=s, episodes=EPISODES).commands for s in (config.PANEL_SEED, a["panel_seed"], b["panel_seed"]))
    assert not torch.equal(pa, main) and not torch.equal(pa, pb)
    assert a["episodes_per_condition"] == EPISODES and a["steps"] == STEPS

    c = run_held_out([falls, zero, twin], tmp_path / "c.json", seed=a["panel_seed"], env=HELD_OUT_ENV)
    assert c["panel_seed"] == a["panel_seed"]
    assert c["policies"][str(zero)] == a["policies"][str(zero)]       # replayed exactly, whatever the company
    assert c["policies"][str(twin)] == c["policies"][str(zero)]       # one panel: same spawns, pushes, noise
    assert c["policies"][str(falls)]["survival"] == 0.0 < c["policies"][str(zero)]["survival"]


def test_held_out_nan_policy_is_a_nan_crash(tmp_path):
    zero, nan = export(tmp_path, zero_policy()), export(tmp_path, NanOnZeroLastAction(), "nan.pt2")
    with pytest.raises(EvalError, match=f"^nan: {re.escape(str(nan))}"):
        run_held_out([zero, nan], tmp_path / "held_out.json", env=HELD_OUT_ENV)
