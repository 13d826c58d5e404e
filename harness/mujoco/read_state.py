"""The simulation's arrays -> our RobotState: frame rotations and one packed buffer per step.

Torch on the simulation's own device and dtype (float64 from C MuJoCo, float32 from MuJoCo Warp),
so on a GPU nothing here leaves it."""

from __future__ import annotations

import torch

from harness.state import RobotState


def rotate_inverse(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate world vectors v (N, 3) into the frames of unit quaternions q (N, 4, w x y z)."""
    w, x, y, z = q[:, 0:1], q[:, 1:2], q[:, 2:3], q[:, 3:4]
    vx, vy, vz = v[:, 0:1], v[:, 1:2], v[:, 2:3]
    # u x v written out: a cross-product call costs more than the whole rotation
    cross = torch.cat([y * vz - z * vy, z * vx - x * vz, x * vy - y * vx], dim=1)
    return v * (2.0 * w * w - 1.0) - 2.0 * w * cross + 2.0 * q[:, 1:] * (x * vx + y * vy + z * vz)


def projected_gravity(q: torch.Tensor) -> torch.Tensor:
    """World (0, 0, -1) in the body frames of quaternions q (N, 4)."""
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    return -torch.stack([2.0 * (x * z - w * y), 2.0 * (y * z + w * x), 1.0 - 2.0 * (x * x + y * y)], dim=1)


def pack_state(floats: dict[str, torch.Tensor], flags: dict[str, torch.Tensor], episode_step: torch.Tensor,
               terrain_level: torch.Tensor, device: torch.device) -> RobotState:
    """A RobotState from (N, k) columns: every float field is packed into one fresh float32 buffer
    and handed out as views of one tensor (a single transfer per step when `device` is not the
    simulation's, and nothing the env writes later, such as resets, can reach it); the bool
    fields likewise."""
    n = episode_step.shape[0]
    fbuf = torch.cat([a.to(torch.float32) for a in floats.values()], dim=1).to(device)
    bbuf = torch.cat(list(flags.values()), dim=1).to(device)
    fields = {}
    for buf, parts in ((fbuf, floats), (bbuf, flags)):
        start = 0
        for name, a in parts.items():
            fields[name] = buf[:, start:start + a.shape[1]]
            start += a.shape[1]
    fields["base_height"] = fields["base_height"][:, 0]
    fields["trunk_contact"] = fields["trunk_contact"][:, 0]
    fields["foot_vel"] = fields["foot_vel"].view(n, 4, 3)
    ints = torch.stack([episode_step, terrain_level]).to(device)
    return RobotState(**fields, episode_step=ints[0], terrain_level=ints[1])
