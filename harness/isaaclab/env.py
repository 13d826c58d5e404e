"""The Isaac Lab driver: IsaacLabQuadrupedEnv owns one ManagerBasedRLEnv (see harness/isaaclab/__init__.py)."""

from __future__ import annotations

import random
from contextlib import contextmanager
from dataclasses import replace
from typing import NamedTuple

import numpy as np
import torch

from harness import config
from harness.config import EnvOptions
from harness.env_api import (BackendError, check_actions, check_command_ranges, check_commands, check_levels,
                             check_options, check_yaw, zero_unstable_rows)
from harness.isaaclab import boot
from harness.isaaclab.boot import isaac_device
from harness.isaaclab.read_state import finite_rows, read_robot_state, resolve_bodies, resolve_joint_map
from harness.isaaclab.task_config import (COMMAND, CONTACT_SENSOR, HEIGHT_SCANNER, HOOK_TERM, ROBOT,
                                          isaac_terms, make_env_cfg)
from harness.state import RobotState, build_observation

_OPEN_ENV = None       # Isaac Lab allows one simulation (one env) per process at a time


class _Transition(NamedTuple):
    state: RobotState
    terminated: torch.Tensor
    truncated: torch.Tensor
    unstable: int


def _yaw_quat(yaw: torch.Tensor) -> torch.Tensor:
    """(N, 4) x y z w quaternions of pure yaw rotations (Isaac Lab 3.0 is x y z w everywhere)."""
    half = 0.5 * yaw
    z = torch.zeros_like(yaw)
    return torch.stack((z, z, torch.sin(half), torch.cos(half)), dim=-1)


def build_isaac_env(options: EnvOptions, seed: int, device: torch.device | str, external_commands: bool):
    """Start (imports), build the registry cfg with our edits, launch kit-less, construct the ManagerBasedRLEnv."""
    boot.start(device)
    from isaaclab.envs import ManagerBasedRLEnv

    dev = isaac_device(device)
    env_cfg = make_env_cfg(options, seed=seed, device=dev, external_commands=external_commands, terms=isaac_terms())
    boot.launch(env_cfg, dev)
    try:
        with keep_global_rng():
            return ManagerBasedRLEnv(cfg=env_cfg)
    except FileNotFoundError as e:          # go2.usd or the ground plane: NVIDIA's asset host, or ISAACSIM_ASSET_ROOT
        boot.close_launch()
        raise BackendError(f"Isaac Lab could not load an asset: {e}\n{boot.ASSET_HINT}") from e
    except BaseException:
        boot.close_launch()
        raise


@contextmanager
def keep_global_rng():
    """Isaac Lab's env seeds python/numpy/torch(+cuda) global RNGs and flips cudnn flags
    (isaaclab.utils.seed.configure_seed); put train.py's streams and flags back afterwards, so
    making an env leaves train.py's randomness as on the MuJoCo backend."""
    py, np_state = random.getstate(), np.random.get_state()
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    flags = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(np_state)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = flags


class IsaacLabQuadrupedEnv:
    """harness.env_api.QuadrupedEnv on Isaac Lab 3.0 (Newton; cuda, or Warp's CPU device). See that
    module for the contract.

    Extra over the protocol: info["isaac_log"] holds Isaac's extras["log"] when any env reset this
    step, e.g. "Metrics/base_velocity/error_vel_xy", Isaac's own episode-mean tracking error of the
    envs that ended (3.0 finalises it per episode at reset).
    """

    obs_dim = config.OBS_DIM
    action_dim = config.NUM_JOINTS

    def __init__(self, options: EnvOptions, seed: int = 0, device: torch.device | str = "cuda",
                 external_commands: bool = False):
        check_options(options)
        _claim_process()
        try:
            isaac_env = build_isaac_env(options, seed, device, external_commands)
        except BaseException:
            release_process(None)
            raise
        try:
            self._attach(isaac_env, options, seed, external_commands)
        except BaseException:
            isaac_env.close()
            release_process(None)
            raise

    @classmethod
    def from_isaac_env(cls, isaac_env, options: EnvOptions, seed: int = 0,
                       external_commands: bool = False) -> "IsaacLabQuadrupedEnv":
        """Wrap an already built (cfg-edited) ManagerBasedRLEnv; tests pass a fake one."""
        check_options(options)
        self = cls.__new__(cls)
        self._attach(isaac_env, options, seed, external_commands)
        return self

    def _attach(self, env, options: EnvOptions, seed: int, external_commands: bool) -> None:
        global _OPEN_ENV
        self._env = env
        self.options = options
        self.seed = int(seed)
        self.external_commands = bool(external_commands)
        self.num_envs = n = int(env.num_envs)
        self.device = dev = torch.device(env.device)
        self.max_episode_length = int(env.max_episode_length)
        if self.max_episode_length != config.EPISODE_STEPS:
            raise BackendError(f"Isaac env episode is {self.max_episode_length} steps, harness {config.EPISODE_STEPS}")
        self._step_dt = float(env.step_dt)
        self._robot = env.scene[ROBOT]
        self._contact = env.scene.sensors[CONTACT_SENSOR]
        self._scanner = env.scene.sensors.get(HEIGHT_SCANNER) if options.terrain == "rough" else None
        self._terrain = getattr(env.scene, "terrain", None) if options.terrain == "rough" else None
        self._command = env.command_manager.get_term(COMMAND)
        self._joints = resolve_joint_map(self._robot.joint_names).to(dev)
        self._bodies = resolve_bodies(self._robot, self._contact).to(dev)
        default = self._joints.to_ours(self._robot.data.default_joint_pos.torch[:1]).cpu()
        if not torch.allclose(default, torch.tensor([config.DEFAULT_JOINT_POS]), atol=1e-4):
            raise BackendError(f"Isaac's Go2 default pose {default.tolist()} differs from config.DEFAULT_JOINT_POS")

        self._obs_gen = torch.Generator(device=dev).manual_seed(self.seed + 7919)
        z = lambda *s: torch.zeros(*s, device=dev)  # noqa: E731
        self._actions = z(n, 12)
        self._last_actions = z(n, 12)
        self._external = z(n, 3)
        level = options.initial_terrain_level if self._terrain is not None else 0
        self._pending_levels = torch.full((n,), level, dtype=torch.long, device=dev)
        self._levels = self._pending_levels.clone()
        self._captured: _Transition | None = None
        self._needs_reset = True
        self._closed = False
        self.state: RobotState | None = None
        env.harness_transition_hook = self._on_transition
        _OPEN_ENV = self

    # --- public attributes ---------------------------------------------------------------

    @property
    def commands(self) -> torch.Tensor:
        return self._command.command

    @property
    def terrain_levels(self) -> torch.Tensor:
        return self._levels.clone()

    # --- QuadrupedEnv ----------------------------------------------------------------------

    def reset(self, yaw: torch.Tensor | None = None) -> torch.Tensor:
        self._check_open()
        n = self.num_envs
        if yaw is not None:
            yaw = check_yaw(yaw, n, torch.float32).to(self.device)
        self._apply_levels(torch.ones(n, dtype=torch.bool, device=self.device))
        self._env.reset()
        if yaw is not None:
            pose = torch.cat((self._robot.data.root_pos_w.torch, _yaw_quat(yaw)), dim=-1)
            self._robot.write_root_pose_to_sim_index(root_pose=pose)
            self._env.sim.forward()   # update link kinematics for the new heading
        if self.external_commands:
            self._write_external_commands()
        self._actions.zero_()
        self._last_actions.zero_()
        self._needs_reset = False
        self.state = self._read(episode_step=self._env.episode_length_buf)
        return self._observation(self.state)

    def step(self, actions: torch.Tensor):
        self._check_open()
        if self._needs_reset:
            raise RuntimeError("call env.reset() before env.step()")
        actions = check_actions(actions, self.num_envs).to(self.device)
        self._last_actions = self._actions
        self._actions = actions
        self._captured = None
        self._env.step(self._joints.to_isaac(actions))
        t = self._captured
        if t is None:
            raise RuntimeError(
                f"Isaac Lab did not call the harness's '{HOOK_TERM}' reward term during step(); "
                "the reward manager must not be changed"
            )
        done = t.terminated | t.truncated
        if self.external_commands:
            self._write_external_commands()
        # a finished env starts its new episode with zero last action, like Isaac's action manager
        self._actions = torch.where(done[:, None], 0.0, self._actions)
        obs_state = self._read_observed(t.state)
        info = {
            "unstable": t.unstable,
            "episode_length": torch.where(done, t.state.episode_step, 0),
        }
        if bool(done.any()):
            info["isaac_log"] = {k: _scalar(v) for k, v in self._env.extras.get("log", {}).items()}
        self.state = t.state
        return self._observation(obs_state), t.state, t.terminated, t.truncated, info

    def set_commands(self, commands: torch.Tensor, env_ids: torch.Tensor | None = None) -> None:
        commands, ids = check_commands(commands, env_ids, self.num_envs)
        commands, ids = commands.to(self.device), ids.to(self.device)
        self._external[ids] = commands
        self._command.vel_command_b[ids] = commands
        self._command.is_standing_env[ids] = False   # Isaac would zero "standing" envs' commands

    def set_command_ranges(self, **ranges: tuple[float, float]) -> None:
        for name, value in check_command_ranges(ranges).items():
            setattr(self._command.cfg.ranges, name, value)  # read at each resample

    def set_terrain_levels(self, levels: torch.Tensor) -> None:
        levels = check_levels(levels, self.num_envs).to(self.device)
        if self._terrain is not None:
            self._pending_levels = levels

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._env.close()
            finally:
                release_process(self)
                boot.close_launch()

    # --- internals -------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this environment was closed")

    def _read(self, episode_step: torch.Tensor) -> RobotState:
        return read_robot_state(
            self._robot, self._contact, self._joints, self._bodies,
            commands=self._command.command, actions=self._actions, last_actions=self._last_actions,
            episode_step=episode_step, terrain_level=self._levels, step_dt=self._step_dt,
            ray_hits_w=None if self._scanner is None else self._scanner.data.ray_hits_w.torch,
        )

    def _read_observed(self, transition: RobotState) -> RobotState:
        """What the policy observes after step(): post-reset robot, current commands and last action."""
        d = self._robot.data
        return replace(
            transition,
            base_lin_vel=d.root_lin_vel_b.torch.clone(),
            base_ang_vel=d.root_ang_vel_b.torch.clone(),
            projected_gravity=d.projected_gravity_b.torch.clone(),
            joint_pos=self._joints.to_ours(d.joint_pos.torch),
            default_joint_pos=self._joints.to_ours(d.default_joint_pos.torch),
            joint_vel=self._joints.to_ours(d.joint_vel.torch),
            commands=self._command.command.clone(),
            actions=self._actions.clone(),
        )

    def _on_transition(self) -> None:
        """Runs inside Isaac's step(), after terminations and before resets."""
        env = self._env
        state = self._read(episode_step=env.episode_length_buf)
        ok = finite_rows(state)
        bad = ~ok
        n_bad = int(bad.sum())
        if n_bad:
            state = zero_unstable_rows(state, bad)
            env.reset_buf[bad] = True                  # Isaac resets them with the rest
        terminated = env.reset_terminated.clone().bool() | bad
        truncated = env.reset_time_outs.clone().bool() & ~terminated
        self._apply_levels(env.reset_buf.bool())
        self._captured = _Transition(state, terminated, truncated, n_bad)

    def _apply_levels(self, env_mask: torch.Tensor) -> None:
        """Move envs about to reset to their pending difficulty row (their spawn origin)."""
        ids = torch.nonzero(env_mask).flatten()
        if len(ids) == 0:
            return
        self._levels[ids] = self._pending_levels[ids]
        t = self._terrain
        if t is not None and getattr(t, "terrain_origins", None) is not None:
            t.terrain_levels[ids] = self._levels[ids]
            t.env_origins[ids] = t.terrain_origins[t.terrain_levels[ids], t.terrain_types[ids]]

    def _write_external_commands(self) -> None:
        self._command.vel_command_b[:] = self._external
        self._command.is_standing_env[:] = False

    def _observation(self, state: RobotState) -> torch.Tensor:
        return build_observation(state, noise=self.options.obs_noise, generator=self._obs_gen)


def _scalar(v):
    if isinstance(v, torch.Tensor):
        return float(v.float().mean()) if v.numel() else float("nan")
    return v


def _claim_process() -> None:
    if _OPEN_ENV is not None and not _OPEN_ENV._closed:
        raise BackendError(
            "Isaac Lab runs one environment per process: close() the open IsaacLabQuadrupedEnv before making another"
        )


def open_env():
    """The IsaacLabQuadrupedEnv this process holds open, or None."""
    return _OPEN_ENV if _OPEN_ENV is not None and not _OPEN_ENV._closed else None


def release_process(env=None) -> None:
    """Forget the process's open env (env: only if it is that one)."""
    global _OPEN_ENV
    if env is None or _OPEN_ENV is env:
        _OPEN_ENV = None
