"""The environment interface every backend implements (MuJoCo and Isaac Lab).

train.py gets one from ctx.make_env(...); evaluation builds one with external commands.
Tensors live on env.device; joints in harness.config.JOINT_NAMES order.
"""

from __future__ import annotations

from typing import Protocol

import torch

from harness import config
from harness.config import EnvOptions
from harness.state import RobotState


class BackendError(RuntimeError):
    """The chosen backend cannot run here; the message says what to install."""


def check_actions(actions, num_envs: int) -> torch.Tensor:
    """Validate actions as step() promises: a finite float (N, 12) tensor. Returns a new float32
    tensor clipped to +-ACTION_CLIP (the caller's tensor is untouched)."""
    if not isinstance(actions, torch.Tensor):
        raise ValueError(f"actions must be a torch.Tensor of shape ({num_envs}, 12), got {type(actions).__name__}")
    if tuple(actions.shape) != (num_envs, config.NUM_JOINTS):
        raise ValueError(f"actions must have shape ({num_envs}, 12), got {tuple(actions.shape)}")
    if not actions.dtype.is_floating_point:
        raise ValueError(f"actions must be a floating-point tensor (torch.float32), got {actions.dtype}")
    finite = torch.isfinite(actions).all(dim=1)
    if not finite.all():
        bad = torch.nonzero(~finite).flatten()[:5].tolist()
        raise ValueError(f"actions contain NaN or inf (envs {bad}...); expected finite values")
    return actions.detach().to(torch.float32).clamp(-config.ACTION_CLIP, config.ACTION_CLIP)


class QuadrupedEnv(Protocol):
    options: EnvOptions
    num_envs: int
    device: torch.device
    obs_dim: int                 # 48
    action_dim: int              # 12
    max_episode_length: int      # 1000 policy steps (20 s)

    commands: torch.Tensor       # (N, 3) current velocity commands
    terrain_levels: torch.Tensor  # (N,) long, current difficulty row (0 on flat)
    state: RobotState            # the state of the last transition (see step)

    def reset(self, yaw: torch.Tensor | None = None) -> torch.Tensor:
        """Reset every environment; start yaw uniform in [-pi, pi) unless given. Returns (N, 48)."""

    def step(self, actions: torch.Tensor) -> tuple[torch.Tensor, RobotState, torch.Tensor, torch.Tensor, dict]:
        """Apply (N, 12) actions for one 50 Hz policy step.

        Returns (obs, state, terminated, truncated, info):
          state       the transition's RobotState, filled before any reset: compute rewards from it;
          terminated  (N,) bool, failures (trunk contact, flipped base);
          truncated   (N,) bool, 20 s time-outs (not failures: bootstrap their value);
          obs         (N, 48), already the first observation of a new episode where done;
          info        {"unstable": int envs reset because the simulation went unstable,
                       "episode_length": (N,) long steps of episodes that just ended, 0 elsewhere}.
        Raises ValueError for actions of the wrong shape or dtype, or with NaN/inf.
        """

    def set_commands(self, commands: torch.Tensor, env_ids: torch.Tensor | None = None) -> None:
        """Overwrite velocity commands (evaluation injects its panel this way)."""

    def set_command_ranges(self, **ranges: tuple[float, float]) -> None:
        """Change lin_vel_x / lin_vel_y / ang_vel_z sampling ranges (a curriculum), within bounds."""

    def set_terrain_levels(self, levels: torch.Tensor) -> None:
        """Difficulty row per environment, applied at each environment's next reset."""

    def close(self) -> None: ...
