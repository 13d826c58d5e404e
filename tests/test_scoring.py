"""Evaluation on real MuJoCo with a shrunken panel: standing still, falls, NaN, gait flags."""

from __future__ import annotations

import pytest
import torch

from harness import artifact
from harness.scoring import EvalError, evaluate_policy, gait_flags
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


def test_full_panel_standing_still_is_about_0_65():
    assert 0.6 < standing_still_error(make_panel()) < 0.7


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
