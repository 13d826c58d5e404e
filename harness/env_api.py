"""The environment interface every backend implements (MuJoCo and Isaac Lab).

train.py gets one from ctx.make_env(...); evaluation builds one with external commands.
Tensors live on env.device; joints in harness.config.JOINT_NAMES order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from harness import config
from harness.config import EnvOptions, OptionError

if TYPE_CHECKING:  # torch is imported where it is used: the orchestrator imports BackendError for free
    import torch

    from harness.state import RobotState


class BackendError(RuntimeError):
    """The chosen backend cannot run here; the message says what to install."""


# --- the checks every backend makes on what it is given ------------------------------------


def check_options(options) -> None:
    if not isinstance(options, EnvOptions):
        raise OptionError(f"options must be a harness.config.EnvOptions, got {type(options).__name__}")
    config.validate(options)


def check_actions(actions, num_envs: int) -> torch.Tensor:
    """Validate actions as step() promises: a finite float (N, 12) tensor. Returns a new float32
    tensor clipped to +-ACTION_CLIP (the caller's tensor is untouched)."""
    import torch

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


def check_yaw(yaw, num_envs: int, dtype) -> torch.Tensor:
    """reset()'s start headings: num_envs finite angles, flattened to a detached (N,) tensor of dtype."""
    import torch

    yaw = torch.as_tensor(yaw, dtype=dtype).detach().reshape(-1)
    if yaw.shape[0] != num_envs or not torch.isfinite(yaw).all():
        raise ValueError(f"yaw must be {num_envs} finite angles (one per env), got shape {tuple(yaw.shape)}")
    return yaw


def check_commands(commands, env_ids, num_envs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """set_commands()'s input: finite float32 (K, 3) commands and the (K,) long env ids they go to
    (every env when env_ids is None). Devices are left as given; the backend moves them."""
    import torch

    commands = torch.as_tensor(commands).detach().float()
    ids = torch.arange(num_envs) if env_ids is None else torch.as_tensor(env_ids).long().reshape(-1)
    if tuple(commands.shape) != (len(ids), 3) or not torch.isfinite(commands).all():
        raise ValueError(f"commands must be a finite ({len(ids)}, 3) tensor, got shape {tuple(commands.shape)}")
    return commands, ids


def check_command_ranges(ranges: dict) -> dict[str, tuple[float, float]]:
    """set_command_ranges()'s input, within the harness bounds, as {name: (low, high)} floats."""
    for name, value in ranges.items():
        if name not in config.COMMAND_NAMES:
            raise OptionError(f"unknown command range {name!r}; choose from {list(config.COMMAND_NAMES)}")
        config.check_range(name, value, config.BOUNDS["command_range"])
    return {name: (float(value[0]), float(value[1])) for name, value in ranges.items()}


def check_levels(levels, num_envs: int) -> torch.Tensor:
    """set_terrain_levels()'s input: one row per env, as a (N,) long tensor clamped to the terrain's rows."""
    import torch

    levels = torch.as_tensor(levels).detach().long().reshape(-1)
    if levels.shape[0] != num_envs:
        raise ValueError(f"levels must have one entry per env ({num_envs}), got {levels.shape[0]}")
    return levels.clamp(0, config.TERRAIN_LEVELS - 1)


def zero_unstable_rows(state: RobotState, bad: torch.Tensor) -> RobotState:
    """The state with the float rows of blown-up envs (bad, (N,) bool) zeroed and any NaN/inf left
    elsewhere made 0: a simulation that went unstable never leaks NaN into rewards."""
    import torch

    from harness.state import RobotState

    out = {}
    for name, v in vars(state).items():
        if isinstance(v, torch.Tensor) and v.dtype.is_floating_point and name != "default_joint_pos":
            rows = bad.to(v.device).view(-1, *([1] * (v.dim() - 1)))
            v = torch.where(rows, torch.zeros_like(v), torch.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0))
        out[name] = v
    return RobotState(**out)


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
