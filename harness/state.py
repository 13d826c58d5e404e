"""The backend-neutral batched state that reward terms read, and the policy observation.

Both backends (MuJoCo, Isaac Lab) fill a RobotState after every policy step, before any
environment is reset, so train.py's reward functions see the transition that just happened.
All tensors are float32 (bool where noted) on the environment's device, batch-first (N, ...),
joints in harness.config.JOINT_NAMES order, feet in harness.config.FOOT_NAMES order.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from harness import config


@dataclass
class RobotState:
    # base, body frame
    base_lin_vel: torch.Tensor          # (N, 3) m/s
    base_ang_vel: torch.Tensor          # (N, 3) rad/s
    projected_gravity: torch.Tensor     # (N, 3) unit gravity in the body frame; (0, 0, -1) upright
    base_height: torch.Tensor           # (N,) m above the terrain under the base
    # joints
    joint_pos: torch.Tensor             # (N, 12) rad, absolute
    default_joint_pos: torch.Tensor     # (N, 12) rad
    joint_vel: torch.Tensor             # (N, 12) rad/s
    joint_acc: torch.Tensor             # (N, 12) rad/s^2
    torques: torch.Tensor               # (N, 12) N m, applied (after the limit)
    # policy
    actions: torch.Tensor               # (N, 12) this step's action (clipped)
    last_actions: torch.Tensor          # (N, 12) the previous step's action
    commands: torch.Tensor              # (N, 3) v_x, v_y (m/s, body frame), yaw rate (rad/s)
    # feet
    foot_contact: torch.Tensor          # (N, 4) bool, normal force above the threshold
    foot_contact_force: torch.Tensor    # (N, 4) N, magnitude of the net contact force
    foot_air_time: torch.Tensor         # (N, 4) s in the air so far (0 while in contact)
    foot_last_air_time: torch.Tensor    # (N, 4) s, length of the last completed flight
    foot_contact_time: torch.Tensor     # (N, 4) s in contact so far (0 while in the air)
    foot_last_contact_time: torch.Tensor  # (N, 4) s, length of the last completed stance
    foot_first_contact: torch.Tensor    # (N, 4) bool, touched down during this step
    foot_vel: torch.Tensor              # (N, 4, 3) m/s, world frame
    foot_height: torch.Tensor           # (N, 4) m above the terrain under the foot
    # bodies that should not touch the ground
    undesired_contact: torch.Tensor     # (N, 4) bool, thigh touching (FL, FR, RL, RR)
    trunk_contact: torch.Tensor         # (N,) bool, trunk touching (a termination)
    # bookkeeping
    episode_step: torch.Tensor          # (N,) long, policy steps since reset (after this step)
    terrain_level: torch.Tensor         # (N,) long, 0 on flat ground
    dt: float = config.CONTROL_DT

    @property
    def num_envs(self) -> int:
        return self.base_lin_vel.shape[0]

    def clone(self) -> "RobotState":
        return RobotState(**{f.name: _clone(getattr(self, f.name)) for f in fields(self)})

    def index(self, ids) -> "RobotState":
        """The state of a subset of environments."""
        return RobotState(**{f.name: _index(getattr(self, f.name), ids) for f in fields(self)})


def _clone(v):
    return v.clone() if isinstance(v, torch.Tensor) else v


def _index(v, ids):
    return v[ids] if isinstance(v, torch.Tensor) else v


def build_observation(state: RobotState, noise: bool, generator: torch.Generator | None = None) -> torch.Tensor:
    """The 48-D policy observation (Isaac Lab's flat Go2 layout), with uniform noise if asked.

    The "actions" slot holds the action just applied, which is the last action the policy
    will see when it acts next.
    """
    parts = {
        "base_lin_vel": state.base_lin_vel,
        "base_ang_vel": state.base_ang_vel,
        "projected_gravity": state.projected_gravity,
        "velocity_commands": state.commands,
        "joint_pos": state.joint_pos - state.default_joint_pos,
        "joint_vel": state.joint_vel,
        "actions": state.actions,
    }
    chunks = []
    for name, size, scale in config.OBS_LAYOUT:
        x = parts[name]
        if noise and scale > 0.0:
            u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = x + (2.0 * u - 1.0) * scale
        chunks.append(x)
    return torch.cat(chunks, dim=-1)


def obs_slices() -> dict[str, slice]:
    """Where each observation term sits in the 48-D vector."""
    out, start = {}, 0
    for name, size, _ in config.OBS_LAYOUT:
        out[name] = slice(start, start + size)
        start += size
    return out
