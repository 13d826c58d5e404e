"""The fixed evaluation panel: commands and start headings drawn from the harness's own seed, and on
the rough task each episode's terrain level."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from harness import config


@dataclass(frozen=True)
class Panel:
    commands: torch.Tensor    # (episodes, segments, 3): v_x, v_y, yaw rate per 5 s segment
    start_yaw: torch.Tensor   # (episodes,) rad
    segment_steps: int        # policy steps per segment
    levels: torch.Tensor | None = None  # (episodes,) terrain level of each episode on rough; None on flat

    @property
    def episodes(self) -> int:
        return self.commands.shape[0]

    def command_at(self, step: int) -> torch.Tensor:
        """(episodes, 3) commands in force at policy step `step` of every episode."""
        seg = min(step // self.segment_steps, self.commands.shape[1] - 1)
        return self.commands[:, seg]


def terrain_levels(episodes: int) -> torch.Tensor:
    """(episodes,) levels spread evenly over 0 .. TERRAIN_LEVELS-1, easiest first."""
    return torch.arange(episodes) * config.TERRAIN_LEVELS // episodes


def make_panel(seed: int = config.PANEL_SEED, episodes: int = config.PANEL_EPISODES,
               task: str = config.DEFAULT_TASK) -> Panel:
    """The same panel on every machine and backend: CPU generator, fixed seed. The commands do not
    depend on the task; rough adds the levels."""
    g = torch.Generator().manual_seed(seed)
    segment_steps = int(round(config.PANEL_SEGMENT_SECONDS / config.CONTROL_DT))
    segments = math.ceil(config.EPISODE_STEPS / segment_steps)
    cmd = torch.empty(episodes, segments, 3)
    for i, key in enumerate(("lin_vel_x", "lin_vel_y", "ang_vel_z")):
        lo, hi = config.PANEL_RANGES[key]
        cmd[..., i] = lo + (hi - lo) * torch.rand(episodes, segments, generator=g)
    standing = torch.rand(episodes, segments, generator=g) < config.PANEL_ZERO_FRACTION
    cmd[standing] = 0.0
    start_yaw = (torch.rand(episodes, generator=g) * 2.0 - 1.0) * math.pi
    levels = terrain_levels(episodes) if task == "rough" else None
    return Panel(commands=cmd, start_yaw=start_yaw, segment_steps=segment_steps, levels=levels)


def standing_still_error(panel: Panel) -> float:
    """vel_err of a policy that never moves: the mean command speed over the panel."""
    return float(panel.commands[..., :2].norm(dim=-1).mean())
