"""The panel rollout: one walk through the evaluation panel, shared by scoring and the video.

harness.scoring runs it on every panel episode at once and accumulates the metrics (Tracking:
the vel_err its main panel and held-out check share); harness.video runs it on one episode and
draws each step. Both see the same steps: the evaluation options, the panel's start headings,
the command in force written into the env and into the observation, the policy's action, and a
NonFiniteActions stop on NaN/inf.
"""

from __future__ import annotations

from typing import Iterator, NamedTuple

import torch

from harness import config
from harness.config import EnvOptions
from harness.panel import Panel
from harness.state import RobotState, obs_slices

EVAL_ENV_SEED = config.PANEL_SEED     # the evaluation env's own seed (spawn offsets)


class NonFiniteActions(RuntimeError):
    """The policy output NaN/inf actions; .step is the panel step."""

    def __init__(self, step: int):
        super().__init__(f"the policy output NaN/inf actions at step {step}")
        self.step = step


class PanelStep(NamedTuple):
    step: int                  # policy step within the episode (0-based)
    command: torch.Tensor      # (E, 3) the command in force (on the env's device)
    state: RobotState          # the transition's state (before any reset)
    terminated: torch.Tensor   # (E,) bool
    truncated: torch.Tensor    # (E,) bool
    info: dict


def eval_options(num_envs: int, task: str = config.DEFAULT_TASK, **changes) -> EnvOptions:
    """The evaluation environment's options: the task's terrain, no observation noise, no randomisation;
    `changes` (a held-out condition) override them and are checked against config.BOUNDS."""
    if task not in config.TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {config.TASKS}")
    return EnvOptions(**{"num_envs": num_envs, "terrain": task, "obs_noise": False, **changes})


def panel_rollout(policy, env, panel: Panel, steps: int, device: torch.device,
                  episodes: slice = slice(None)) -> Iterator[PanelStep]:
    """Reset env (one environment per selected panel episode) and step the policy through the panel.

    env must have been built with eval_options() and external_commands=True. Raises
    NonFiniteActions when the policy outputs NaN/inf.
    """
    cmd_slice = obs_slices()["velocity_commands"]
    if panel.levels is not None:  # rough: each episode on its level, from its first step
        env.set_terrain_levels(panel.levels[episodes].to(device))
    obs = env.reset(yaw=panel.start_yaw[episodes].to(device))
    for step in range(steps):
        command = panel.command_at(step)[episodes].to(device)
        env.set_commands(command)
        obs = obs.clone()
        obs[:, cmd_slice] = command  # the observation carries the command in force now
        with torch.no_grad():
            actions = policy(obs)
        if not torch.isfinite(actions).all():
            raise NonFiniteActions(step)
        obs, state, terminated, truncated, info = env.step(actions.float())
        yield PanelStep(step, command, state, terminated, truncated, info)


class Tracking:
    """vel_err of each episode of a walk: ||cmd_xy - v_xy (body)|| while alive; after a fall,
    ||cmd_xy|| (standing still) for the rest, so falling can never beat standing."""

    def __init__(self, episodes: int, device: torch.device):
        self.sum = torch.zeros(episodes, dtype=torch.float64)
        self.alive = torch.ones(episodes, dtype=torch.bool, device=device)
        self.steps = 0

    def add(self, s: PanelStep) -> torch.Tensor:
        """Count one step; returns which episodes were alive during it."""
        alive, cmd_xy = self.alive, s.command[:, :2]
        err = torch.where(alive, (cmd_xy - s.state.base_lin_vel[:, :2]).norm(dim=-1), cmd_xy.norm(dim=-1))
        self.sum += err.double().cpu()
        self.last_err = err   # this step's charged error, for harness.diagnose
        self.steps += 1
        self.alive = alive & ~s.terminated.bool()
        return alive

    def vel_err(self) -> torch.Tensor:
        """(episodes,) float64, each episode's mean over its steps."""
        return self.sum / max(self.steps, 1)
