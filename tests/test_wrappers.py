"""gymnasium registration and the rsl-rl-lib VecEnv adapter (with a few OnPolicyRunner iterations)."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from harness import config, wrappers
from harness.config import EnvOptions
from harness.mujoco.env import MujocoQuadrupedEnv


def test_gymnasium_make_vec():
    env = gym.make_vec(wrappers.ENV_ID, num_envs=3, seed=1, max_episode_steps=5)
    try:
        obs, info = env.reset()
        assert obs.shape == (3, config.OBS_DIM) and obs.dtype == np.float32
        assert env.single_action_space.shape == (12,)
        for t in range(5):
            obs, rew, term, trunc, info = env.step(np.zeros((3, 12), np.float32))
            assert rew.shape == (3,) and np.isfinite(rew).all()
            # standing still with random commands: tracking reward is in (0, 1.5]
            assert (rew > 0).all() and (rew <= 1.5 + 1e-6).all()
        assert trunc.all() and not term.any()          # time-out after 5 steps
        assert info["final_obs"].shape == (3, config.OBS_DIM) and info["_final_obs"].all()
        with pytest.raises(ValueError, match="float"):
            env.step(np.zeros((3, 12), np.int64))
        first, _ = env.reset(seed=7)
        again, _ = env.reset(seed=7)
        np.testing.assert_array_equal(first, again)  # reset(seed=...) restarts the random streams
    finally:
        env.close()


def test_gymnasium_custom_reward_and_options():
    def upright(state):
        return -state.projected_gravity[:, 2]

    env = gym.make_vec(wrappers.ENV_ID, num_envs=2, reward_fn=upright, terrain="flat", obs_noise=False)
    env.reset()
    _, rew, *_ = env.step(np.zeros((2, 12), np.float32))
    np.testing.assert_allclose(rew, 1.0, atol=1e-3)
    env.close()
    with pytest.raises(ValueError, match="unknown environment option"):
        gym.make_vec(wrappers.ENV_ID, num_envs=2, stairs=True)


def test_default_reward_peaks_at_perfect_tracking():
    env = MujocoQuadrupedEnv(EnvOptions(num_envs=2, obs_noise=False), seed=0)
    env.reset()
    _, state, *_ = env.step(torch.zeros(2, 12))
    state.commands = torch.cat([state.base_lin_vel[:, :2], state.base_ang_vel[:, 2:]], dim=1)
    torch.testing.assert_close(wrappers.default_reward(state), torch.full((2,), 1.5))
    state.commands = state.commands + torch.tensor([1.0, 0.0, 0.0])
    assert (wrappers.default_reward(state) < 1.5).all()


def test_rsl_rl_adapter_step_contract():
    calls = []

    def reward_fn(state):
        calls.append(state.episode_step.clone())
        return torch.ones(state.num_envs)

    vec = wrappers.make_rsl_rl_env(EnvOptions(num_envs=2), seed=0, reward_fn=reward_fn, episode_steps=3)
    obs = vec.get_observations()
    assert obs["policy"].shape == (2, 48) and vec.num_actions == 12 and vec.max_episode_length == 3
    for _ in range(3):
        obs, rew, dones, extras = vec.step(torch.zeros(2, 12))
    assert dones.dtype == torch.long and dones.tolist() == [1, 1]
    assert extras["time_outs"].tolist() == [True, True]
    assert (calls[-1] == 3).all()                  # the reward saw the pre-reset state
    vec.episode_length_buf = torch.tensor([1, 2])
    assert vec.step(torch.zeros(2, 12))[1].shape == (2,)
    with pytest.raises(ValueError, match="reward_fn must return"):
        wrappers.RslRlVecEnv(MujocoQuadrupedEnv(EnvOptions(num_envs=2), seed=0),
                             reward_fn=lambda s: torch.ones(3)).step(torch.zeros(2, 12))


def test_rsl_rl_on_policy_runner_trains(tmp_path):
    from rsl_rl.runners import OnPolicyRunner
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    vec = wrappers.make_rsl_rl_env(EnvOptions(num_envs=4), seed=0)
    # rsl-rl-lib 5.5.x: separate actor and critic model configs, and the observation set "actor"
    # (was "policy") mapped to the env's "policy" group, as Isaac Lab 3.0's Go2 runner config does
    cfg = {
        "num_steps_per_env": 4,
        "save_interval": 100,
        "obs_groups": {"actor": ["policy"], "critic": ["policy"]},
        "actor": {
            "class_name": "MLPModel",
            "hidden_dims": [32, 32],
            "activation": "elu",
            "obs_normalization": True,
            "distribution_cfg": {"class_name": "GaussianDistribution", "init_std": 1.0},
        },
        "critic": {"class_name": "MLPModel", "hidden_dims": [32, 32], "activation": "elu", "obs_normalization": True},
        "algorithm": {
            "class_name": "PPO",
            "num_learning_epochs": 2,
            "num_mini_batches": 2,
            "learning_rate": 1e-3,
            "schedule": "adaptive",
            "desired_kl": 0.01,
        },
    }
    runner = OnPolicyRunner(vec, cfg, log_dir=str(tmp_path), device="cpu")
    assert runner.alg.actor.obs_dim == 48 and runner.alg.critic.obs_dim == 48
    before = [p.clone() for p in runner.alg.get_policy().parameters()]
    runner.learn(num_learning_iterations=3, init_at_random_ep_len=True)
    after = list(runner.alg.get_policy().parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after))
    policy = runner.get_inference_policy(device="cpu")
    act = policy(vec.get_observations())
    assert act.shape == (4, 12) and torch.isfinite(act).all()
    # the plain-tensor export the baseline benchmark scores (normaliser + MLP + mean)
    exported = policy.as_jit()
    torch.testing.assert_close(exported(vec.get_observations()["policy"]), act)
    # its tensorboard log (tensorboard is a dependency of rsl-rl-lib 5.x) has our extras and its own figures
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"Perf/total_fps", "Loss/learning_rate", "/env/vel_err"} <= tags
    assert list(tmp_path.glob("model_*.pt"))
