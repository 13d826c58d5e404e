"""The embedded MuJoCo backend: N quadrupeds stepped on all usable CPU threads with mujoco.batch.

One policy step = one `Batch.step(nstep=4)` of a model without the render-only geoms (the video
renders the full `render_model`). The MJCF's DC motors (PD Kp 25, Kd 0.5 under Isaac Lab's Go2
torque-speed limit) act at every 200 Hz substep; integrator Euler, armature 0.01 kg m^2. The
batch keeps one MjData per thread, not per robot (1.3x faster), and computes no stage after a
step: the state (qpos, qvel) is new, and the feet's positions and velocities are computed from it
in numpy (robot.FootKinematics, cheaper than MuJoCo's post-step mjSTAGE_VEL, which would redo
collision too), while contact forces, joint torques and joint_acc (qacc: under Euler exactly the
velocity change over one physics step, as Isaac Lab differences it) are those of the last substep.

Per-step work is vectorised numpy over the batch's bound arrays, with no per-env Python loop;
torch only at the edges (actions in, state and observation out), since numpy's per-call cost is
lower for these small ops. Simulation arrays are float64; what is handed out is float32 on `device`.
"""

from __future__ import annotations

import math

import mujoco
import mujoco.batch
import numpy as np
import torch

from harness import config
from harness.config import EnvOptions, OptionError
from harness.env_api import (check_actions, check_command_ranges, check_commands, check_levels, check_options,
                             check_yaw, zero_unstable_rows)
from harness.mujoco import robot
from harness.mujoco import terrain as terrain_mod
from harness.mujoco.read_state import pack_state, projected_gravity, rotate_inverse
from harness.state import RobotState, build_observation

_STAGE_VEL = mujoco.mjtStage.mjSTAGE_VEL.value
_STAGE_NONE = mujoco.mjtStage.mjSTAGE_NONE.value
# MuJoCo's warnings that mean a blown-up simulation (mj_step then resets that data itself)
_BAD_WARNINGS = [
    mujoco.mjtWarning.mjWARN_BADQPOS.value,
    mujoco.mjtWarning.mjWARN_BADQVEL.value,
    mujoco.mjtWarning.mjWARN_BADQACC.value,
]
_WARN_NUMBER = 1  # mjWarningStat is (lastinfo, number)
_PERSISTENT = False         # per-thread MjData: faster than one per sim
_STEP_STAGE = _STAGE_NONE   # nothing derived after a step: FootKinematics gives what the env reads
_MAX_ABS_QVEL = _MAX_ABS_POS = 1.0e3  # a state beyond these is blown up, even without a MuJoCo warning
_RESET_SPREAD = 0.5  # m, uniform +- offset of the spawn point around the tile centre
_F32 = np.float32


class MujocoQuadrupedEnv:
    """harness.env_api.QuadrupedEnv on MuJoCo (CPU). See that module for the contract.

    Extra constructor keywords the harness does not pass from train.py:
      nthread        batch threads, 0 = every CPU;
      episode_steps  episode length in policy steps (tests use short episodes).
    Extras: `model` (the simulated MjModel), `render_model` (the same robot with its looks),
    `get_data(i)` (env i's state in a render_model MjData, forward computed), `set_episode_steps(steps)` (rsl-rl's random episode start), `reseed(seed)`.
    """

    obs_dim = config.OBS_DIM
    action_dim = config.NUM_JOINTS

    def __init__(
        self,
        options: EnvOptions,
        seed: int = 0,
        device: torch.device | str = "cpu",
        external_commands: bool = False,
        nthread: int = 0,
        episode_steps: int = config.EPISODE_STEPS,
    ):
        check_options(options)
        if isinstance(episode_steps, bool) or not isinstance(episode_steps, int) or episode_steps <= 0:
            raise OptionError(f"episode_steps must be a positive int, got {episode_steps!r}")
        if isinstance(nthread, bool) or not isinstance(nthread, int) or nthread < 0:
            raise OptionError(f"nthread must be an int >= 0 (0 = all CPUs), got {nthread!r}")
        self.options = options
        self.num_envs = n = options.num_envs
        self.device = torch.device(device)
        self.max_episode_length = episode_steps
        self.external_commands = bool(external_commands)
        self.seed = int(seed)

        self.terrain = terrain_mod.rough() if options.terrain == "rough" else terrain_mod.flat()
        self.model = robot.build_model(self.terrain, visual=False)
        self._render: tuple[mujoco.MjModel, mujoco.MjData] | None = None
        self.index = idx = robot.index(self.model)
        self._batch = b = mujoco.batch.Batch(self.model, n, nthread, persistent=_PERSISTENT)

        self._qpos = b.bind("qpos")  # live (N, ...) float64 views of the batch
        self._qvel = b.bind("qvel")
        self._ctrl = b.bind("ctrl")[:, :config.NUM_JOINTS]  # the PD targets (then the back-EMF terms)
        self._sensordata = b.bind("sensordata")
        self._feet = robot.FootKinematics(self.model)
        self._joint_torque = b.bind("qfrc_actuator")[:, 6:]  # the motor's applied torque, after its limits
        self._joint_acc = b.bind("qacc")[:, 6:]
        # sensordata columns of the [fx, fy, fz] of the 9 contact sensors (feet, thighs, trunk)
        contact_adr = np.concatenate([idx.foot_contact, idx.thigh_contact, [idx.trunk_contact]])
        self._contact_cols = contact_adr[:, None] + np.arange(1, 4)                # (9, 3)

        # per-simulation model fields for domain randomisation (expanded only when used)
        self._friction = b.expand("pair_friction") if options.friction_range is not None else None
        self._body_mass = b.expand("body_mass") if options.added_mass_range is not None else None
        self._base_trunk_mass = float(self.model.body_mass[idx.trunk_body])

        self._default = np.asarray(config.DEFAULT_JOINT_POS, dtype=np.float64)
        self._default_n = np.broadcast_to(self._default.astype(_F32), (n, 12))
        self._tile_centers = self.terrain.tile_centers()  # (levels, types, 2)

        self._rng = np.random.default_rng(self.seed)                 # dynamics randomness
        self._obs_gen = torch.Generator().manual_seed(self.seed + 7919)  # observation noise (CPU)

        self._ranges = {k: tuple(float(v) for v in getattr(options, k)) for k in config.COMMAND_NAMES}
        self._resample_steps = max(1, int(round(options.resample_seconds / config.CONTROL_DT)))
        self._push_steps = (
            None if options.push_interval_seconds is None
            else max(1, int(round(options.push_interval_seconds / config.CONTROL_DT)))
        )

        # bookkeeping, numpy (N, ...)
        self._commands = np.zeros((n, 3), _F32)
        self._actions = np.zeros((n, 12), _F32)
        self._last_actions = np.zeros((n, 12), _F32)
        self._air_time = np.zeros((n, 4), _F32)
        self._contact_time = np.zeros((n, 4), _F32)
        self._last_air_time = np.zeros((n, 4), _F32)
        self._last_contact_time = np.zeros((n, 4), _F32)
        self._episode_step = np.zeros(n, np.int64)
        self._command_timer = np.zeros(n, np.int64)
        self._push_timer = np.zeros(n, np.int64)
        level0 = options.initial_terrain_level if self.terrain.kind == "rough" else 0
        self._levels = np.full(n, level0, np.int64)
        self._pending_levels = self._levels.copy()
        self._types = np.arange(n) % self.terrain.types  # terrain column of each env, fixed
        self._warn_seen = np.zeros((n, len(_BAD_WARNINGS)), np.int64)

        self.state: RobotState | None = None
        self._closed = False
        self._needs_reset = True

    # --- public attributes ---------------------------------------------------------------

    @property
    def commands(self) -> torch.Tensor:
        return torch.from_numpy(self._commands.copy()).to(self.device)

    @property
    def terrain_levels(self) -> torch.Tensor:
        return torch.from_numpy(self._levels.copy()).to(self.device)

    # --- QuadrupedEnv ----------------------------------------------------------------------

    def reset(self, yaw: torch.Tensor | None = None) -> torch.Tensor:
        self._check_open()
        n = self.num_envs
        if yaw is not None:
            yaw = check_yaw(yaw, n, torch.float64).cpu().numpy()
        if not self.external_commands:
            self._commands[:] = 0.0
        self._reset_envs(np.arange(n), yaw)
        self._needs_reset = False
        kin = self._kinematics()
        self.state = self._make_state(kin, self._contacts(), np.zeros((n, 4), bool))
        return self._observation(self.state)

    def step(self, actions: torch.Tensor):
        self._check_open()
        if self._needs_reset:
            raise RuntimeError("call env.reset() before env.step()")
        actions = check_actions(actions, self.num_envs).cpu().numpy()

        self._last_actions = self._actions
        self._actions = actions
        self._ctrl[:] = self._default + config.ACTION_SCALE * actions
        if self._push_steps is not None:
            self._maybe_push()

        unstable = self._find_unstable(self._physics_step())
        self._episode_step += 1

        kin, contacts = self._kinematics(), self._contacts()
        first_contact = self._update_foot_timers(contacts[0][:, :4] > config.CONTACT_FORCE_THRESHOLD)
        state = self._make_state(kin, contacts, first_contact)
        n_unstable = int(unstable.sum())
        if n_unstable:
            state = zero_unstable_rows(state, torch.from_numpy(unstable))

        trunk = contacts[0][:, 8] > config.CONTACT_FORCE_THRESHOLD
        flipped = kin["projected_gravity"][:, 2] > config.FLIP_GRAVITY_Z
        terminated = trunk | flipped | unstable
        time_out = (self._episode_step >= self.max_episode_length) & ~terminated
        done = terminated | time_out
        episode_length = np.where(done, self._episode_step, 0)

        # after the transition's state (rewards use the commands that were in force)
        if not self.external_commands:
            self._command_timer += 1
            due = np.flatnonzero(self._command_timer >= self._resample_steps)
            if len(due):
                self._sample_commands(due)
        done_ids = np.flatnonzero(done)
        if len(done_ids):
            self._reset_envs(done_ids, None)
        self.state = state
        obs = self._observation(self._obs_view(state, kin if not len(done_ids) else self._kinematics()))
        t = lambda a: torch.from_numpy(a).to(self.device)
        info = {"unstable": n_unstable, "episode_length": t(episode_length)}
        return obs, state, t(terminated), t(time_out), info

    def set_commands(self, commands: torch.Tensor, env_ids: torch.Tensor | None = None) -> None:
        commands, ids = check_commands(commands, env_ids, self.num_envs)
        self._commands[ids.cpu().numpy()] = commands.cpu().numpy()

    def set_command_ranges(self, **ranges: tuple[float, float]) -> None:
        self._ranges.update(check_command_ranges(ranges))

    def set_terrain_levels(self, levels: torch.Tensor) -> None:
        levels = check_levels(levels, self.num_envs).cpu().numpy()
        if self.terrain.kind == "rough":
            self._pending_levels = levels

    def set_episode_steps(self, steps: torch.Tensor) -> None:
        """Overwrite each env's progress through its episode (rsl-rl spreads time-outs this way)."""
        steps = torch.as_tensor(steps).detach().cpu().long().reshape(-1).numpy()
        if steps.shape[0] != self.num_envs:
            raise ValueError(f"steps must have one entry per env ({self.num_envs}), got {steps.shape[0]}")
        self._episode_step[:] = np.clip(steps, 0, self.max_episode_length - 1)

    def reseed(self, seed: int) -> None:
        """Restart the env's random streams (spawns, commands, randomisation, observation noise)."""
        self.seed = int(seed)
        self._rng = np.random.default_rng(self.seed)
        self._obs_gen.manual_seed(self.seed + 7919)

    def close(self) -> None:
        self._closed = True
        self._batch = None

    # --- the simulation itself (rendering, tests) -------------------------------------------

    @property
    def render_model(self) -> mujoco.MjModel:
        """The simulated robot with its render-only geoms (same bodies and joints as `model`)."""
        if self._render is None:
            model = robot.build_model(self.terrain)
            self._render = model, mujoco.MjData(model)
        return self._render[0]

    def get_data(self, i: int) -> mujoco.MjData:
        """Env i's state in a render_model MjData, forward computed (for rendering)."""
        self._check_open()
        model, data = self.render_model, self._render[1]
        data.qpos[:], data.qvel[:] = self._qpos[int(i)], self._qvel[int(i)]
        mujoco.mj_forward(model, data)
        return data

    @property
    def qpos(self) -> np.ndarray:
        """(N, nq) copy of the generalised positions: base xyz, base quaternion (w x y z), 12 joints."""
        return self._qpos.copy()

    @property
    def qvel(self) -> np.ndarray:
        """(N, nv) copy of the generalised velocities (base linear and angular in world axes, 12 joints)."""
        return self._qvel.copy()

    def set_sim_state(self, env_ids, qpos: np.ndarray | None = None, qvel: np.ndarray | None = None) -> None:
        """Put envs' simulations in a given state (rows of qpos / qvel for env_ids) and recompute
        their kinematics, as if physics had brought them there; the next step() continues from it."""
        self._check_open()
        ids = np.asarray(env_ids, dtype=np.int64).reshape(-1)
        if qpos is not None:
            self._qpos[ids] = qpos
        if qvel is not None:
            self._qvel[ids] = qvel
        self._batch.forward(ids, stage=_STAGE_VEL)

    def foot_friction(self) -> np.ndarray:
        """(N, 4) friction of each env's feet (drawn at reset when options.friction_range is set)."""
        if self._friction is None:
            return np.tile(self.model.pair_friction[self.index.foot_pairs[0], 0], (self.num_envs, 1))
        return self._friction[:, self.index.foot_pairs[0], 0].copy()

    def trunk_mass(self) -> np.ndarray:
        """(N,) trunk mass of each env, kg (drawn at reset when options.added_mass_range is set)."""
        if self._body_mass is None:
            return np.full(self.num_envs, self._base_trunk_mass)
        return self._body_mass[:, self.index.trunk_body].copy()

    # --- stepping ------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this environment was closed")

    def _physics_step(self) -> np.ndarray:
        """One policy step of physics; returns ids of simulations MuJoCo raised in."""
        try:
            self._batch.step(nstep=config.DECIMATION, stage=_STEP_STAGE)
        except mujoco.batch.SimulationError as e:
            return np.asarray(e.ids, dtype=np.int64)
        return np.zeros(0, dtype=np.int64)

    def _find_unstable(self, failed: np.ndarray) -> np.ndarray:
        """(N,) bool: sims that raised, warned of bad qpos/qvel/qacc, or hold a non-finite/huge state."""
        bad = np.zeros(self.num_envs, dtype=bool)
        bad[failed] = True
        warn = self._batch.warning[:, _BAD_WARNINGS, _WARN_NUMBER]
        bad |= (warn > self._warn_seen).any(axis=1)
        self._warn_seen[:] = warn
        # "not <=" is also true for NaN, so one comparison catches huge and non-finite values
        ok = (np.abs(self._qvel).max(axis=1) <= _MAX_ABS_QVEL) & (np.abs(self._qpos).max(axis=1) <= _MAX_ABS_POS)
        bad |= ~ok
        return bad

    def _kinematics(self) -> dict[str, np.ndarray]:
        """Base and joint quantities of the current state, float32 (N, ...)."""
        q, v = self._qpos, self._qvel
        quat = q[:, 3:7]
        return {
            "base_lin_vel": rotate_inverse(quat, v[:, :3]).astype(_F32),
            "base_ang_vel": v[:, 3:6].astype(_F32),  # a free joint's angular velocity is in the body frame
            "projected_gravity": projected_gravity(quat).astype(_F32),
            "joint_pos": q[:, 7:].astype(_F32),
            "joint_vel": v[:, 6:].astype(_F32),
        }

    def _contacts(self):
        """Contact force magnitudes (N, 9: feet, thighs, trunk), foot vel/height, base height, torques."""
        sens = self._sensordata
        force = np.linalg.norm(sens[:, self._contact_cols], axis=-1).astype(_F32)
        foot_pos, foot_vel = self._feet(self._qpos, self._qvel)
        foot_vel = foot_vel.astype(_F32)
        foot_height = foot_pos[..., 2] - self.terrain.height_at(foot_pos[..., 0], foot_pos[..., 1])
        base_height = self._qpos[:, 2] - self.terrain.height_at(self._qpos[:, 0], self._qpos[:, 1])
        torques = self._joint_torque.astype(_F32)
        return force, foot_vel, foot_height.astype(_F32), base_height.astype(_F32), torques

    def _update_foot_timers(self, is_contact: np.ndarray) -> np.ndarray:
        """Isaac Lab's contact-sensor air/contact timers, per policy step; returns first contacts."""
        dt = _F32(config.CONTROL_DT)
        air, contact = self._air_time, self._contact_time
        first_contact = (air > 0) & is_contact
        first_detached = (contact > 0) & ~is_contact
        self._last_air_time = np.where(first_contact, air + dt, self._last_air_time)
        self._last_contact_time = np.where(first_detached, contact + dt, self._last_contact_time)
        self._air_time = np.where(is_contact, _F32(0), air + dt)
        self._contact_time = np.where(is_contact, contact + dt, _F32(0))
        return first_contact

    def _make_state(self, kin, contacts, first_contact) -> RobotState:
        force, foot_vel, foot_height, base_height, torques = contacts
        joint_acc = self._joint_acc.astype(_F32)
        thr = config.CONTACT_FORCE_THRESHOLD
        n = self.num_envs
        floats = {
            "base_lin_vel": kin["base_lin_vel"], "base_ang_vel": kin["base_ang_vel"],
            "projected_gravity": kin["projected_gravity"], "base_height": base_height[:, None],
            "joint_pos": kin["joint_pos"], "default_joint_pos": self._default_n,
            "joint_vel": kin["joint_vel"], "joint_acc": joint_acc,
            "torques": torques, "actions": self._actions, "last_actions": self._last_actions,
            "commands": self._commands, "foot_contact_force": force[:, :4],
            "foot_air_time": self._air_time, "foot_last_air_time": self._last_air_time,
            "foot_contact_time": self._contact_time, "foot_last_contact_time": self._last_contact_time,
            "foot_vel": foot_vel.reshape(n, 12), "foot_height": foot_height,
        }
        flags = {
            "foot_contact": force[:, :4] > thr, "foot_first_contact": first_contact,
            "undesired_contact": force[:, 4:8] > thr, "trunk_contact": force[:, 8:9] > thr,
        }
        return pack_state(floats, flags, self._episode_step, self._levels, self.device)

    def _obs_view(self, state: RobotState, kin: dict[str, np.ndarray]) -> RobotState:
        """What the policy sees next: current kinematics, commands and (reset-zeroed) last actions."""
        t = lambda a: torch.from_numpy(a).to(self.device)
        obs_state = RobotState.__new__(RobotState)
        obs_state.__dict__.update(state.__dict__)
        obs_state.__dict__.update({k: t(v) for k, v in kin.items()})
        obs_state.commands = t(self._commands.copy())
        obs_state.actions = t(self._actions.copy())
        return obs_state

    def _observation(self, state: RobotState) -> torch.Tensor:
        gen = self._obs_gen if state.base_lin_vel.device.type == "cpu" else None
        return build_observation(state, noise=self.options.obs_noise, generator=gen)

    # --- resets, commands, randomisation --------------------------------------------------------

    def _reset_envs(self, ids, yaw: np.ndarray | None) -> None:
        """Reset the given envs only: new spawn, default joints, zero velocity, fresh bookkeeping."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        k, rng = len(ids), self._rng
        if yaw is None:
            yaw = rng.uniform(-math.pi, math.pi, k)
        if self.terrain.kind == "rough":
            self._levels[ids] = self._pending_levels[ids]
            centers = self._tile_centers[self._levels[ids], self._types[ids]]
        else:
            centers = np.zeros((k, 2))
        xy = centers + rng.uniform(-_RESET_SPREAD, _RESET_SPREAD, (k, 2))
        ground = self.terrain.height_at(xy[:, 0], xy[:, 1])

        self._batch.reset(ids, stage=_STAGE_NONE)
        qpos = np.zeros((k, self.model.nq))
        qpos[:, :2] = xy
        qpos[:, 2] = ground + config.BASE_INIT_HEIGHT
        qpos[:, 3] = np.cos(0.5 * yaw)
        qpos[:, 6] = np.sin(0.5 * yaw)
        qpos[:, 7:] = self._default
        self._qpos[ids] = qpos
        self._qvel[ids] = 0.0
        self._ctrl[ids] = self._default
        self._randomise(ids)
        try:
            self._batch.forward(ids, stage=_STAGE_VEL)
        except mujoco.batch.SimulationError as e:  # a fresh default pose never fails; say so loudly if it does
            raise RuntimeError(f"MuJoCo failed on a fresh reset: {e}") from e
        self._warn_seen[ids] = self._batch.warning[ids][:, _BAD_WARNINGS, _WARN_NUMBER]

        for buf in (self._actions, self._last_actions, self._air_time,
                    self._contact_time, self._last_air_time, self._last_contact_time):
            buf[ids] = 0.0
        self._episode_step[ids] = 0
        if self._push_steps is not None:
            self._push_timer[ids] = rng.integers(0, self._push_steps, k)
        if not self.external_commands:
            self._sample_commands(ids)

    def _randomise(self, ids: np.ndarray) -> None:
        k, o, rng = len(ids), self.options, self._rng
        if self._friction is not None:
            mu = rng.uniform(*o.friction_range, k)
            # both tangential coefficients of every foot's contact pairs (floor, and catch floor on rough)
            self._friction[ids[:, None], self.index.foot_pairs.ravel()[None, :], :2] = mu[:, None, None]
        if self._body_mass is not None:
            dm = rng.uniform(*o.added_mass_range, k)
            self._body_mass[ids, self.index.trunk_body] = self._base_trunk_mass + dm

    def _sample_commands(self, ids) -> None:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        k, rng = len(ids), self._rng
        lo = np.array([self._ranges[n][0] for n in config.COMMAND_NAMES])
        hi = np.array([self._ranges[n][1] for n in config.COMMAND_NAMES])
        cmd = rng.uniform(lo, hi, (k, 3))
        cmd[rng.random(k) < self.options.standing_fraction] = 0.0
        self._commands[ids] = cmd
        self._command_timer[ids] = 0

    def _maybe_push(self) -> None:
        self._push_timer += 1
        due = np.flatnonzero(self._push_timer >= self._push_steps)
        if not len(due):
            return
        self._push_timer[due] = 0
        v = self.options.push_velocity
        self._qvel[due, :2] += self._rng.uniform(-v, v, (len(due), 2))  # the step that follows starts from it

