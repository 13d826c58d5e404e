"""Standard interfaces over a QuadrupedEnv: a gymnasium vector env and an rsl-rl VecEnv.

Importing this module registers "QuadrupedVelocity-v0", so
    gymnasium.make_vec("QuadrupedVelocity-v0", num_envs=64)
gives a numpy-in/numpy-out vector env on the embedded MuJoCo backend.

RslRlVecEnv wraps any QuadrupedEnv (MuJoCo or Isaac Lab) for rsl-rl-lib 5.5.x's
OnPolicyRunner, unmodified: observations are a TensorDict with one group, "policy", as Isaac
Lab's own rsl-rl wrapper gives (use obs_groups={"actor": ["policy"], "critic": ["policy"]}, as
Isaac Lab 3.0's Go2 runner config does), and rewards come from a
`reward_fn(state: RobotState) -> (N,) tensor` computed on the transition's pre-reset state.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from tensordict import TensorDict

from harness import config
from harness.config import EnvOptions, make_options
from harness.state import RobotState, build_observation

ENV_ID = "QuadrupedVelocity-v0"
RewardFn = Callable[[RobotState], torch.Tensor]


def default_reward(state: RobotState) -> torch.Tensor:
    """Isaac Lab-style velocity tracking: exp kernels on the planar and yaw-rate errors (std^2 0.25)."""
    lin_err = (state.commands[:, :2] - state.base_lin_vel[:, :2]).square().sum(dim=1)
    yaw_err = (state.commands[:, 2] - state.base_ang_vel[:, 2]).square()
    return 1.0 * torch.exp(-lin_err / 0.25) + 0.5 * torch.exp(-yaw_err / 0.25)


def _rewards(reward_fn: RewardFn, state: RobotState) -> torch.Tensor:
    r = reward_fn(state)
    if not isinstance(r, torch.Tensor) or r.shape != (state.num_envs,):
        got = tuple(r.shape) if isinstance(r, torch.Tensor) else type(r).__name__
        raise ValueError(f"reward_fn must return a ({state.num_envs},) tensor, got {got}")
    return r


# --- gymnasium -----------------------------------------------------------------------------


class QuadrupedVectorEnv(VectorEnv):
    """gymnasium VectorEnv over MujocoQuadrupedEnv: numpy observations (N, 48), actions (N, 12).

    Autoreset is SAME_STEP: a done env's returned observation is already its next episode's
    first; infos["final_obs"] (N, 48, noise-free) holds the last observation of the ended
    episodes, with infos["_final_obs"] marking them.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int = 64,
        seed: int = 0,
        reward_fn: RewardFn | None = None,
        max_episode_steps: int | None = None,
        **options,
    ):
        from harness.mujoco.env import MujocoQuadrupedEnv

        opts = make_options(num_envs=num_envs, **options)
        kwargs = {} if max_episode_steps is None else {"episode_steps": int(max_episode_steps)}
        self.env = MujocoQuadrupedEnv(opts, seed=seed, **kwargs)
        self.reward_fn = reward_fn or default_reward
        self.num_envs = num_envs
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (config.OBS_DIM,), np.float32)
        self.single_action_space = gym.spaces.Box(
            -config.ACTION_CLIP, config.ACTION_CLIP, (config.NUM_JOINTS,), np.float32
        )
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.env.reseed(seed)
        yaw = None if not options else options.get("yaw")
        obs = self.env.reset(yaw=yaw)
        return obs.cpu().numpy(), {}

    def step(self, actions):
        a = np.asarray(actions)
        if a.dtype.kind != "f":
            raise ValueError(f"actions must be a float array of shape ({self.num_envs}, 12), got dtype {a.dtype}")
        obs, state, terminated, truncated, info = self.env.step(torch.as_tensor(a, dtype=torch.float32))
        rewards = _rewards(self.reward_fn, state)
        done = (terminated | truncated).cpu().numpy()
        infos = {"unstable": info["unstable"], "episode_length": info["episode_length"].cpu().numpy()}
        if done.any():
            infos["final_obs"] = build_observation(state, noise=False).cpu().numpy()
            infos["_final_obs"] = done
        return (
            obs.cpu().numpy(),
            rewards.detach().cpu().numpy().astype(np.float32),
            terminated.cpu().numpy(),
            truncated.cpu().numpy(),
            infos,
        )

    def close_extras(self, **kwargs) -> None:
        self.env.close()


def register() -> None:
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, vector_entry_point=f"{__name__}:QuadrupedVectorEnv")


register()


# --- rsl-rl ----------------------------------------------------------------------------------

try:
    from rsl_rl.env import VecEnv as _RslVecEnv
except ImportError:  # rsl-rl-lib is a dependency; keep the module importable without it
    _RslVecEnv = object


class RslRlVecEnv(_RslVecEnv):
    """rsl-rl-lib 5.5.x VecEnv over any QuadrupedEnv, rewarded by reward_fn(state).

    step() returns (TensorDict{"policy": obs}, rewards, dones (long), extras) with
    extras["time_outs"] the truncations (bootstrapped by PPO) and extras["log"] a few means.
    """

    def __init__(self, env, reward_fn: RewardFn | None = None):
        self.env = env
        self.reward_fn = reward_fn or default_reward
        self.num_envs = env.num_envs
        self.num_actions = env.action_dim
        self.max_episode_length = env.max_episode_length
        self.device = env.device
        self.cfg = {"options": env.options}
        self._obs = self._group(env.reset())

    def _group(self, obs: torch.Tensor) -> TensorDict:
        return TensorDict({"policy": obs}, batch_size=[self.num_envs], device=self.device)

    @property
    def episode_length_buf(self) -> torch.Tensor:
        return self.env.state.episode_step

    @episode_length_buf.setter
    def episode_length_buf(self, steps: torch.Tensor) -> None:
        # OnPolicyRunner.learn(init_at_random_ep_len=True) spreads time-outs this way
        setter = getattr(self.env, "set_episode_steps", None)
        if setter is None:
            raise NotImplementedError("this backend cannot set episode progress")
        setter(steps)

    def get_observations(self) -> TensorDict:
        return self._obs

    def step(self, actions: torch.Tensor):
        obs, state, terminated, truncated, info = self.env.step(actions)
        rewards = _rewards(self.reward_fn, state)
        dones = (terminated | truncated).long()
        self._obs = self._group(obs)
        extras = {
            "time_outs": truncated,
            "log": {
                "/env/unstable": float(info["unstable"]),
                "/env/vel_err": float((state.commands[:, :2] - state.base_lin_vel[:, :2]).norm(dim=1).mean()),
            },
        }
        return self._obs, rewards, dones, extras

    def close(self) -> None:
        self.env.close()


def make_rsl_rl_env(options: EnvOptions, seed: int = 0, reward_fn: RewardFn | None = None, **kwargs) -> RslRlVecEnv:
    """The embedded MuJoCo env wrapped for rsl-rl."""
    from harness.mujoco.env import MujocoQuadrupedEnv

    return RslRlVecEnv(MujocoQuadrupedEnv(options, seed=seed, **kwargs), reward_fn)
