"""The batch's numpy arrays -> our RobotState: frame rotations and one packed transfer per step."""

from __future__ import annotations

import numpy as np
import torch

from harness.state import RobotState


def rotate_inverse(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate world vectors v (N, 3) into the frames of unit quaternions q (N, 4, w x y z)."""
    w, x, y, z = q[:, 0:1], q[:, 1:2], q[:, 2:3], q[:, 3:4]
    vx, vy, vz = v[:, 0:1], v[:, 1:2], v[:, 2:3]
    # u x v written out: np.cross costs more than the whole rotation
    cross = np.concatenate([y * vz - z * vy, z * vx - x * vz, x * vy - y * vx], axis=1)
    return v * (2.0 * w * w - 1.0) - 2.0 * w * cross + 2.0 * q[:, 1:] * (x * vx + y * vy + z * vz)


def projected_gravity(q: np.ndarray) -> np.ndarray:
    """World (0, 0, -1) in the body frames of quaternions q (N, 4)."""
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    return -np.stack([2.0 * (x * z - w * y), 2.0 * (y * z + w * x), 1.0 - 2.0 * (x * x + y * y)], axis=1)


def pack_state(floats: dict[str, np.ndarray], flags: dict[str, np.ndarray], episode_step: np.ndarray,
               terrain_level: np.ndarray, device: torch.device) -> RobotState:
    """A RobotState from (N, k) numpy columns: every float field is packed into one fresh buffer and
    handed out as views of one tensor (a single numpy->torch transfer per step, and nothing the env
    writes later, such as resets, can reach it); the bool fields likewise."""
    n = episode_step.shape[0]
    fbuf = torch.from_numpy(np.concatenate(list(floats.values()), axis=1)).to(device)
    bbuf = torch.from_numpy(np.concatenate(list(flags.values()), axis=1)).to(device)
    fields = {}
    for buf, parts in ((fbuf, floats), (bbuf, flags)):
        start = 0
        for name, a in parts.items():
            fields[name] = buf[:, start:start + a.shape[1]]
            start += a.shape[1]
    fields["base_height"] = fields["base_height"][:, 0]
    fields["trunk_contact"] = fields["trunk_contact"][:, 0]
    fields["foot_vel"] = fields["foot_vel"].view(n, 4, 3)
    ints = torch.from_numpy(np.stack([episode_step, terrain_level])).to(device)
    return RobotState(**fields, episode_step=ints[0], terrain_level=ints[1])
