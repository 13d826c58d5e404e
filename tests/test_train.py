"""The baseline train.py: GAE, PPO loss terms, reward terms, and the exported policy."""

import math
from dataclasses import fields

import pytest
import torch

import train
from harness import config
from harness.state import RobotState


def make_state(n=2, **overrides):
    """A RobotState of n upright, motionless robots at the default pose; fields overridable."""
    z = lambda *shape: torch.zeros(n, *shape)  # noqa: E731
    default = torch.tensor(config.DEFAULT_JOINT_POS).repeat(n, 1)
    values = dict(
        base_lin_vel=z(3), base_ang_vel=z(3), projected_gravity=torch.tensor([[0.0, 0.0, -1.0]]).repeat(n, 1),
        base_height=torch.full((n,), 0.3), joint_pos=default.clone(), default_joint_pos=default,
        joint_vel=z(12), joint_acc=z(12), torques=z(12), actions=z(12), last_actions=z(12), commands=z(3),
        foot_contact=torch.ones(n, 4, dtype=torch.bool), foot_contact_force=torch.full((n, 4), 37.0),
        foot_air_time=z(4), foot_last_air_time=z(4), foot_contact_time=z(4), foot_last_contact_time=z(4),
        foot_first_contact=torch.zeros(n, 4, dtype=torch.bool), foot_vel=z(4, 3), foot_height=z(4),
        undesired_contact=torch.zeros(n, 4, dtype=torch.bool), trunk_contact=torch.zeros(n, dtype=torch.bool),
        episode_step=torch.zeros(n, dtype=torch.long), terrain_level=torch.zeros(n, dtype=torch.long),
    )
    unknown = set(overrides) - {f.name for f in fields(RobotState)}
    assert not unknown, unknown
    values.update(overrides)
    return RobotState(**values)


# --- GAE -------------------------------------------------------------------------------


def test_gae_matches_hand_computed_values_with_a_terminal_state():
    rewards = torch.ones(3, 2)
    values = torch.full((3, 2), 0.5)
    dones = torch.tensor([[0, 0], [1, 0], [0, 0]], dtype=torch.bool)  # env 0's episode ends after step 1
    last_values = torch.tensor([2.0, 2.0])
    adv, ret = train.gae(rewards, values, dones, last_values, gamma=0.9, lam=0.8)
    # env 1, no episode end: deltas 0.95, 0.95, 2.3; A_t = delta_t + 0.72 A_{t+1}
    a2, a1 = 2.3, 0.95 + 0.72 * 2.3
    a0 = 0.95 + 0.72 * a1
    # env 0: the episode ends after step 1, so step 1 does not look past it
    b2, b1 = 2.3, 0.5
    b0 = 0.95 + 0.72 * b1
    expected = torch.tensor([[b0, a0], [b1, a1], [b2, a2]])
    torch.testing.assert_close(adv, expected)
    torch.testing.assert_close(ret, expected + 0.5)


def test_timeouts_are_bootstrapped_but_failures_are_not():
    rewards = torch.tensor([1.0, 1.0, 1.0])
    values = torch.tensor([10.0, 10.0, 10.0])
    truncated = torch.tensor([True, False, False])
    out = train.bootstrap_timeouts(rewards, values, truncated, gamma=0.99)
    torch.testing.assert_close(out, torch.tensor([1.0 + 0.99 * 10.0, 1.0, 1.0]))
    # After bootstrapping, GAE treats the time-out like any episode end: its return is r + gamma V.
    adv, ret = train.gae(out[None], torch.zeros(1, 3), torch.tensor([[True, True, False]]), torch.full((3,), 5.0),
                         gamma=0.99, lam=0.95)
    torch.testing.assert_close(ret[0], torch.tensor([10.9, 1.0, 1.0 + 0.99 * 5.0]))


# --- PPO loss -------------------------------------------------------------------------


def _batch_around(model, obs, ratio, advantages, value_offset):
    with torch.no_grad():
        dist, values = model(obs)
        actions = dist.mean + 0.3
        log_prob = dist.log_prob(actions).sum(-1)
    return dict(obs=obs, actions=actions, log_prob=log_prob - math.log(ratio), advantages=advantages,
                values=values - value_offset, returns=values + value_offset, mu=dist.mean, std=dist.stddev)


def test_ppo_surrogate_is_clipped_pessimistically():
    torch.manual_seed(0)
    model = train.ActorCritic(48, 12)
    obs = torch.randn(4, 48)
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0])
    # ratio 0.5: for A > 0 the unclipped term is the pessimistic one (-0.5 A);
    # for A < 0 the clipped one is (-0.8 A).
    batch = _batch_around(model, obs, ratio=0.5, advantages=adv, value_offset=0.0)
    _, stats, _ = train.ppo_loss(model, batch, clip=0.2)
    assert stats["surrogate"] == pytest.approx((-0.5 - 0.5 + 0.8 + 0.8) / 4, abs=1e-5)
    # ratio 2.0: for A > 0 the clipped term wins (-1.2 A); for A < 0 the unclipped (-2 A).
    batch = _batch_around(model, obs, ratio=2.0, advantages=adv, value_offset=0.0)
    _, stats, _ = train.ppo_loss(model, batch, clip=0.2)
    assert stats["surrogate"] == pytest.approx((-1.2 - 1.2 + 2.0 + 2.0) / 4, abs=1e-5)


def test_value_loss_is_clipped_and_entropy_is_gaussian():
    torch.manual_seed(0)
    model = train.ActorCritic(48, 12)
    obs = torch.randn(5, 48)
    # old values 1 below, returns 1 above the current values: unclipped error 1, clipped 1.8
    batch = _batch_around(model, obs, ratio=1.0, advantages=torch.zeros(5), value_offset=1.0)
    loss, stats, _ = train.ppo_loss(model, batch, clip=0.2)
    assert stats["value_loss"] == pytest.approx(1.8**2, rel=1e-4)
    std = train.INIT_NOISE_STD
    assert stats["entropy"] == pytest.approx(12 * (0.5 + 0.5 * math.log(2 * math.pi) + math.log(std)), rel=1e-4)
    expected = stats["surrogate"] + train.VALUE_COEF * stats["value_loss"] - train.ENTROPY_COEF * stats["entropy"]
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_gaussian_kl_is_zero_for_the_same_distribution_and_positive_otherwise():
    mu, std = torch.zeros(3, 12), torch.ones(3, 12)
    same = torch.distributions.Normal(mu, std)
    assert train.gaussian_kl(mu, std, same).abs().max() < 1e-6
    shifted = torch.distributions.Normal(mu + 1.0, std)
    torch.testing.assert_close(train.gaussian_kl(mu, std, shifted), torch.full((3,), 12 * 0.5))


# --- reward terms ---------------------------------------------------------------------


def test_velocity_tracking_kernels():
    s = make_state(commands=torch.tensor([[1.0, 0.0, 0.5], [1.0, 0.0, 0.5]]),
                   base_lin_vel=torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]]),
                   base_ang_vel=torch.tensor([[0.0, 0.0, 0.5], [0.0, 0.0, 0.0]]))
    torch.testing.assert_close(train.track_lin_vel_xy_exp(s), torch.tensor([1.0, math.exp(-0.5 / 0.25)]))
    torch.testing.assert_close(train.track_ang_vel_z_exp(s), torch.tensor([1.0, math.exp(-0.25 / 0.25)]))


def test_penalty_terms_on_hand_built_states():
    s = make_state(base_lin_vel=torch.tensor([[0.0, 0.0, 0.3], [0.0, 0.0, 0.0]]),
                   base_ang_vel=torch.tensor([[0.1, 0.2, 9.0], [0.0, 0.0, 0.0]]),
                   torques=torch.tensor([[2.0] * 12, [0.0] * 12]),
                   joint_acc=torch.tensor([[10.0] * 12, [0.0] * 12]),
                   actions=torch.tensor([[1.0] * 12, [0.0] * 12]),
                   projected_gravity=torch.tensor([[0.6, 0.0, -0.8], [0.0, 0.0, -1.0]]),
                   undesired_contact=torch.tensor([[True, False, True, False], [False] * 4]))
    torch.testing.assert_close(train.lin_vel_z_l2(s), torch.tensor([0.09, 0.0]))
    torch.testing.assert_close(train.ang_vel_xy_l2(s), torch.tensor([0.05, 0.0]))
    torch.testing.assert_close(train.joint_torques_l2(s), torch.tensor([48.0, 0.0]))
    torch.testing.assert_close(train.joint_acc_l2(s), torch.tensor([1200.0, 0.0]))
    torch.testing.assert_close(train.action_rate_l2(s), torch.tensor([12.0, 0.0]))
    torch.testing.assert_close(train.flat_orientation_l2(s), torch.tensor([0.36, 0.0]))
    torch.testing.assert_close(train.undesired_contacts(s), torch.tensor([2.0, 0.0]))


def test_feet_air_time_rewards_long_steps_only_when_moving():
    first = torch.tensor([[True, True, False, False]] * 2)
    air = torch.tensor([[0.7, 0.3, 0.9, 0.9]] * 2)
    s = make_state(foot_first_contact=first, foot_last_air_time=air,
                   commands=torch.tensor([[1.0, 0.0, 0.0], [0.05, 0.0, 0.0]]))
    # (0.7 - 0.5) + (0.3 - 0.5) from the two feet touching down; nothing when the command is ~zero
    torch.testing.assert_close(train.feet_air_time(s), torch.tensor([0.0, 0.0]), atol=1e-6, rtol=0)
    s.foot_last_air_time = torch.tensor([[0.8, 0.6, 0.9, 0.9]] * 2)
    torch.testing.assert_close(train.feet_air_time(s), torch.tensor([0.4, 0.0]))


def test_compute_reward_sums_weighted_terms_scaled_by_dt():
    s = make_state(commands=torch.tensor([[1.0, 0.0, 0.0]] * 2), base_lin_vel=torch.tensor([[1.0, 0.0, 0.0]] * 2))
    total, terms = train.compute_reward(s)
    assert set(terms) == {fn.__name__ for fn in train.REWARDS}
    torch.testing.assert_close(total, sum(terms.values()))
    weight = train.REWARDS[train.track_lin_vel_xy_exp]
    torch.testing.assert_close(terms["track_lin_vel_xy_exp"], torch.full((2,), weight * s.dt))


# --- the exported policy --------------------------------------------------------------


def test_exported_policy_matches_in_process_policy_with_normalisation(tmp_path):
    from harness.artifact import export_policy, load_policy

    torch.manual_seed(1)
    model = train.ActorCritic(48, 12)
    model.normalizer.update(torch.randn(500, 48) * 3.0 + 1.0)  # non-trivial statistics
    policy = train.Policy(model).eval()
    path = tmp_path / "policy.pt2"
    export_policy(policy, path)
    loaded = load_policy(path)
    obs = torch.randn(64, 48) * 3.0 + 1.0
    with torch.no_grad():
        torch.testing.assert_close(loaded(obs), policy(obs))
    # the normalisation really is inside: without it the actions differ
    with torch.no_grad():
        assert not torch.allclose(model.actor(obs), loaded(obs))


# --- learning is real -----------------------------------------------------------------


class IterationLimitedContext:
    """The harness's real TrainContext, stopped after a fixed number of iterations instead of a
    clock, so the test does the same work on any machine."""

    def __init__(self, iterations, seed=0):
        from harness.context import TrainContext

        self.errors = []
        self.ctx = TrainContext(seed, "cpu", "mujoco", budget_s=1e9, smoke=True, send=self._record)
        self.ctx.time_up = lambda: len(self.errors) >= iterations
        self.ctx.start_clock()

    def _record(self, message):
        if message["type"] == "log":
            self.errors.append(message["scalars"]["vel_err"])


@pytest.mark.slow
def test_a_short_run_lowers_the_training_tracking_error(monkeypatch):
    monkeypatch.setattr(train, "ENV_OPTIONS", dict(train.ENV_OPTIONS, num_envs=LEARN_ENVS))
    torch.manual_seed(0)
    run = IterationLimitedContext(LEARN_ITERATIONS, seed=0)
    policy = train.train(run.ctx)
    first, last = sum(run.errors[:3]) / 3, sum(run.errors[-3:]) / 3
    print(f"training vel_err: first 3 iterations {first:.3f}, last 3 {last:.3f}")
    assert last < first - LEARN_MARGIN
    assert isinstance(policy, torch.nn.Module)


LEARN_ENVS = 256
LEARN_ITERATIONS = 60
LEARN_MARGIN = 0.1
