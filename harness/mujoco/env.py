"""The embedded MuJoCo backend's environment: N quadrupeds, one env logic over two steppers.

The physics lives in a stepper (the seam): stepper_cpu.CpuStepper, C MuJoCo's mujoco.batch on the
CPU threads (the default), or stepper_warp.WarpStepper, MuJoCo Warp on an NVIDIA GPU (or on Warp's
CPU device, in the tests). Both hand out the simulation's arrays (qpos, qvel, ctrl, sensordata, joint
torque and qacc, per-world friction and mass) as torch tensors sharing the simulator's memory, and
step, clear, restart and forward rows. Everything else is written once, here, in torch on the
stepper's device: commands, resets, pushes, randomisation (draws.py), foot kinematics, RobotState,
unstable rows, terrain levels. On a GPU no array leaves it; the host syncs are a few scalars per step
(how many envs are done, unstable, due for a command or a push).

One policy step = `stepper.step(4)`: the MJCF's DC motors (PD Kp 25, Kd 0.5 under Isaac Lab's Go2
torque-speed limit) act at every 200 Hz substep; integrator Euler, armature 0.01 kg m^2. No stage is
computed after a step: the feet's positions and velocities come from qpos/qvel (robot.FootKinematics),
while contact forces, joint torques and joint_acc (qacc: under Euler exactly the velocity change over
one physics step, as Isaac Lab differences it) are those of the last substep. Handed out: float32 on
`device`.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np
import torch

from harness import config
from harness.config import EnvOptions, OptionError
from harness.env_api import (check_actions, check_command_ranges, check_commands, check_levels, check_options,
                             check_yaw, zero_unstable_rows)
from harness.mujoco import robot
from harness.mujoco.draws import Draws
from harness.mujoco import terrain as terrain_mod
from harness.mujoco.read_state import pack_state, projected_gravity, rotate_inverse
from harness.threads import one_torch_thread
from harness.state import RobotState, build_observation

STEPPERS = ("mujoco", "warp")  # C MuJoCo (mujoco.batch), MuJoCo Warp
_MAX_ABS_QVEL = _MAX_ABS_POS = 1.0e3  # a state beyond these is blown up, even without a MuJoCo warning
_RESET_SPREAD = 0.5  # m, uniform +- offset of the spawn point around the tile centre


def default_stepper(device: torch.device | str) -> str:
    return "warp" if torch.device(device).type == "cuda" else "mujoco"  # MuJoCo Warp on a GPU


class MujocoQuadrupedEnv:
    """harness.env_api.QuadrupedEnv on MuJoCo. See that module for the contract.

    Extra constructor keywords the harness does not pass from train.py:
      stepper        "mujoco" (C MuJoCo) or "warp" (MuJoCo Warp on `device`, the CPU too: how the
                     tests run the GPU code); None: default_stepper(device);
      nthread        C MuJoCo batch threads, 0 = every CPU;
      episode_steps  episode length in policy steps (tests use short episodes).
    Extras: `model` (the simulated MjModel), `render_model` (the same robot with its looks),
    `get_data(i)` (env i's state in a render_model MjData, forward computed), `set_episode_steps(steps)`
    (rsl-rl's random episode start), `reseed(seed)`, `warm()` (compile the stepper's kernels).
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
        stepper: str | None = None,
    ):
        check_options(options)
        if isinstance(episode_steps, bool) or not isinstance(episode_steps, int) or episode_steps <= 0:
            raise OptionError(f"episode_steps must be a positive int, got {episode_steps!r}")
        if isinstance(nthread, bool) or not isinstance(nthread, int) or nthread < 0:
            raise OptionError(f"nthread must be an int >= 0 (0 = all CPUs), got {nthread!r}")
        stepper = default_stepper(device) if stepper is None else stepper
        if stepper not in STEPPERS:
            raise OptionError(f"stepper must be one of {STEPPERS}, got {stepper!r}")
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
        per_world = {"per_world_friction": options.friction_range is not None,
                     "per_world_mass": options.added_mass_range is not None}
        if stepper == "mujoco":
            from harness.mujoco.stepper_cpu import CpuStepper

            config.check_device(options, "cpu")
            self._sim = CpuStepper(self.model, n, nthread, **per_world)
        else:
            from harness.mujoco.stepper_warp import WarpStepper

            self._sim = WarpStepper(self.model, n, self.device, **per_world)
            self.model = self._sim.model  # the solver it really steps with (Newton)
        self.stepper = stepper
        sim = self._sim
        dev, self._dtype = sim.device, sim.dtype
        self._feet = robot.FootKinematics(self.model)
        # sensordata columns of the [fx, fy, fz] of the 9 contact sensors (feet, thighs, trunk)
        contact_adr = np.concatenate([idx.foot_contact, idx.thigh_contact, [idx.trunk_contact]])
        self._contact_cols = torch.as_tensor(contact_adr[:, None] + np.arange(1, 4), device=dev)  # (9, 3)
        self._foot_pairs = torch.as_tensor(idx.foot_pairs.ravel(), device=dev)
        self._base_trunk_mass = float(self.model.body_mass[idx.trunk_body])

        self._default = torch.as_tensor(config.DEFAULT_JOINT_POS, dtype=self._dtype, device=dev)
        self._default_n = self._default.float().expand(n, 12)
        self._tile_centers = torch.as_tensor(self.terrain.tile_centers(), device=dev)  # (levels, types, 2)

        self._rng = Draws(self.seed, dev)  # dynamics randomness
        self._obs_gen = torch.Generator(device=self.device).manual_seed(self.seed + 7919)  # observation noise

        self._ranges = {k: tuple(float(v) for v in getattr(options, k)) for k in config.COMMAND_NAMES}
        self._resample_steps = max(1, int(round(options.resample_seconds / config.CONTROL_DT)))
        self._push_steps = (
            None if options.push_interval_seconds is None
            else max(1, int(round(options.push_interval_seconds / config.CONTROL_DT)))
        )

        # bookkeeping, (N, ...) on the simulation's device
        f32 = {"dtype": torch.float32, "device": dev}
        self._commands = torch.zeros((n, 3), **f32)
        self._actions = torch.zeros((n, 12), **f32)
        self._last_actions = torch.zeros((n, 12), **f32)
        self._air_time = torch.zeros((n, 4), **f32)
        self._contact_time = torch.zeros((n, 4), **f32)
        self._last_air_time = torch.zeros((n, 4), **f32)
        self._last_contact_time = torch.zeros((n, 4), **f32)
        self._episode_step = torch.zeros(n, dtype=torch.long, device=dev)
        self._command_timer = torch.zeros(n, dtype=torch.long, device=dev)
        self._push_timer = torch.zeros(n, dtype=torch.long, device=dev)
        level0 = options.initial_terrain_level if self.terrain.kind == "rough" else 0
        self._levels = torch.full((n,), level0, dtype=torch.long, device=dev)
        self._pending_levels = self._levels.clone()
        self._types = torch.arange(n, device=dev) % self.terrain.types  # terrain column of each env, fixed

        self.state: RobotState | None = None
        self._closed = False
        self._needs_reset = True

    # --- public attributes ---------------------------------------------------------------

    @property
    def commands(self) -> torch.Tensor:
        return self._commands.to(self.device, copy=True)

    @property
    def terrain_levels(self) -> torch.Tensor:
        return self._levels.to(self.device, copy=True)

    # --- QuadrupedEnv ----------------------------------------------------------------------

    def reset(self, yaw: torch.Tensor | None = None) -> torch.Tensor:
        with one_torch_thread(self._sim.device):
            return self._reset(yaw)

    def step(self, actions: torch.Tensor):
        with one_torch_thread(self._sim.device):
            return self._step(actions)

    def _reset(self, yaw: torch.Tensor | None) -> torch.Tensor:
        self._check_open()
        n = self.num_envs
        if yaw is not None:
            yaw = check_yaw(yaw, n, torch.float64)
        if not self.external_commands:
            self._commands.zero_()
        every = torch.arange(n, device=self._sim.device)
        self._reset_envs(every, yaw)
        self._sim.forward(every)  # the contacts of the state reset() returns (C MuJoCo has them already)
        self._needs_reset = False
        kin = self._kinematics()
        self.state = self._make_state(kin, self._contacts(), torch.zeros((n, 4), dtype=torch.bool, device=every.device))
        return self._observation(self.state)

    def _step(self, actions: torch.Tensor):
        self._check_open()
        if self._needs_reset:
            raise RuntimeError("call env.reset() before env.step()")
        actions = check_actions(actions, self.num_envs).to(self._sim.device)

        self._last_actions = self._actions
        self._actions = actions
        self._sim.ctrl[:] = self._default + config.ACTION_SCALE * actions
        if self._push_steps is not None:
            self._maybe_push()

        unstable = self._find_unstable(self._sim.step(config.DECIMATION))
        self._episode_step += 1

        kin, contacts = self._kinematics(), self._contacts()
        first_contact = self._update_foot_timers(contacts[0][:, :4] > config.CONTACT_FORCE_THRESHOLD)
        state = self._make_state(kin, contacts, first_contact)
        n_unstable = int(unstable.sum())
        if n_unstable:
            state = zero_unstable_rows(state, unstable)

        trunk = contacts[0][:, 8] > config.CONTACT_FORCE_THRESHOLD
        flipped = kin["projected_gravity"][:, 2] > config.FLIP_GRAVITY_Z
        terminated = trunk | flipped | unstable
        time_out = (self._episode_step >= self.max_episode_length) & ~terminated
        done = terminated | time_out
        episode_length = torch.where(done, self._episode_step, 0)

        # after the transition's state (rewards use the commands that were in force)
        if not self.external_commands:
            self._command_timer += 1
            due = torch.nonzero(self._command_timer >= self._resample_steps).flatten()
            if len(due):
                self._sample_commands(due)
        done_ids = torch.nonzero(done).flatten()
        if len(done_ids):
            self._reset_envs(done_ids, None)
        self.state = state
        obs = self._observation(self._obs_view(state, kin if not len(done_ids) else self._kinematics()))
        info = {"unstable": n_unstable, "episode_length": episode_length.to(self.device)}
        return obs, state, terminated.to(self.device), time_out.to(self.device), info

    def set_commands(self, commands: torch.Tensor, env_ids: torch.Tensor | None = None) -> None:
        commands, ids = check_commands(commands, env_ids, self.num_envs)
        self._commands[ids.to(self._sim.device)] = commands.to(self._sim.device)

    def set_command_ranges(self, **ranges: tuple[float, float]) -> None:
        self._ranges.update(check_command_ranges(ranges))

    def set_terrain_levels(self, levels: torch.Tensor) -> None:
        levels = check_levels(levels, self.num_envs)
        if self.terrain.kind == "rough":
            self._pending_levels = levels.to(self._sim.device)

    def set_episode_steps(self, steps: torch.Tensor) -> None:
        """Overwrite each env's progress through its episode (rsl-rl spreads time-outs this way)."""
        steps = torch.as_tensor(steps).detach().long().reshape(-1)
        if steps.shape[0] != self.num_envs:
            raise ValueError(f"steps must have one entry per env ({self.num_envs}), got {steps.shape[0]}")
        self._episode_step[:] = steps.clamp(0, self.max_episode_length - 1).to(self._sim.device)

    def reseed(self, seed: int) -> None:
        """Restart the env's random streams (spawns, commands, randomisation, observation noise)."""
        self.seed = int(seed)
        self._rng = Draws(self.seed, self._sim.device)
        self._obs_gen.manual_seed(self.seed + 7919)

    def warm(self) -> float:
        """Compile the stepper's kernels now (MuJoCo Warp; nothing to do for C MuJoCo): seconds taken.
        The harness calls it before the training clock starts. Call reset() after it."""
        self._needs_reset = True
        return self._sim.warm() if hasattr(self._sim, "warm") else 0.0

    def close(self) -> None:
        self._closed = True
        self._sim.close()

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
        data.qpos[:], data.qvel[:] = self._sim.qpos[int(i)].cpu().numpy(), self._sim.qvel[int(i)].cpu().numpy()
        mujoco.mj_forward(model, data)
        return data

    @property
    def qpos(self) -> np.ndarray:
        """(N, nq) float64 copy of the generalised positions: base xyz, base quaternion (w x y z), 12 joints."""
        return self._sim.qpos.cpu().numpy().astype(np.float64)

    @property
    def qvel(self) -> np.ndarray:
        """(N, nv) float64 copy of the generalised velocities (base linear and angular in world axes, 12 joints)."""
        return self._sim.qvel.cpu().numpy().astype(np.float64)

    def set_sim_state(self, env_ids, qpos: np.ndarray | None = None, qvel: np.ndarray | None = None) -> None:
        """Put envs' simulations in a given state (rows of qpos / qvel for env_ids) and recompute
        their kinematics, as if physics had brought them there; the next step() continues from it."""
        self._check_open()
        sim = self._sim
        ids = torch.as_tensor(np.asarray(env_ids, dtype=np.int64).reshape(-1), device=sim.device)
        if qpos is not None:
            sim.qpos[ids] = torch.as_tensor(np.asarray(qpos), dtype=sim.dtype, device=sim.device)
        if qvel is not None:
            sim.qvel[ids] = torch.as_tensor(np.asarray(qvel), dtype=sim.dtype, device=sim.device)
        sim.forward(ids)

    def foot_friction(self) -> np.ndarray:
        """(N, 4) friction of each env's feet (drawn at reset when options.friction_range is set)."""
        if self._sim.friction is None:
            return np.tile(self.model.pair_friction[self.index.foot_pairs[0], 0], (self.num_envs, 1))
        return self._sim.friction[:, self.index.foot_pairs[0], 0].cpu().numpy().astype(np.float64)

    def trunk_mass(self) -> np.ndarray:
        """(N,) trunk mass of each env, kg (drawn at reset when options.added_mass_range is set)."""
        if self._sim.body_mass is None:
            return np.full(self.num_envs, self._base_trunk_mass)
        return self._sim.body_mass[:, self.index.trunk_body].cpu().numpy().astype(np.float64)

    # --- stepping ------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this environment was closed")

    def _find_unstable(self, flagged: torch.Tensor) -> torch.Tensor:
        """(N,) bool: sims the stepper flagged, or that hold a non-finite or huge state."""
        q, v = self._sim.qpos, self._sim.qvel
        # "not <=" is also true for NaN, so one comparison catches huge and non-finite values
        ok = (v.abs().amax(dim=1) <= _MAX_ABS_QVEL) & (q.abs().amax(dim=1) <= _MAX_ABS_POS)
        return flagged | ~ok

    def _kinematics(self) -> dict[str, torch.Tensor]:
        """Base and joint quantities of the current state, float32 (N, ...)."""
        q, v = self._sim.qpos, self._sim.qvel
        quat = q[:, 3:7]
        return {
            "base_lin_vel": rotate_inverse(quat, v[:, :3]).float(),
            "base_ang_vel": v[:, 3:6].float(),  # a free joint's angular velocity is in the body frame
            "projected_gravity": projected_gravity(quat).float(),
            "joint_pos": q[:, 7:].float(),
            "joint_vel": v[:, 6:].float(),
        }

    def _contacts(self):
        """Contact force magnitudes (N, 9: feet, thighs, trunk), foot vel/height, base height, torques."""
        sim = self._sim
        force = torch.linalg.vector_norm(sim.sensordata[:, self._contact_cols], dim=-1).float()
        foot_pos, foot_vel = self._feet(sim.qpos, sim.qvel)
        height_at = self.terrain.height_at_torch
        foot_height = foot_pos[..., 2] - height_at(foot_pos[..., 0], foot_pos[..., 1])
        base_height = sim.qpos[:, 2] - height_at(sim.qpos[:, 0], sim.qpos[:, 1])
        return force, foot_vel.float(), foot_height.float(), base_height.float(), sim.joint_torque.float()

    def _update_foot_timers(self, is_contact: torch.Tensor) -> torch.Tensor:
        """Isaac Lab's contact-sensor air/contact timers, per policy step; returns first contacts."""
        dt = config.CONTROL_DT
        air, contact = self._air_time, self._contact_time
        first_contact = (air > 0) & is_contact
        first_detached = (contact > 0) & ~is_contact
        self._last_air_time = torch.where(first_contact, air + dt, self._last_air_time)
        self._last_contact_time = torch.where(first_detached, contact + dt, self._last_contact_time)
        self._air_time = torch.where(is_contact, 0.0, air + dt)
        self._contact_time = torch.where(is_contact, contact + dt, 0.0)
        return first_contact

    def _make_state(self, kin, contacts, first_contact) -> RobotState:
        force, foot_vel, foot_height, base_height, torques = contacts
        thr = config.CONTACT_FORCE_THRESHOLD
        n = self.num_envs
        floats = {
            "base_lin_vel": kin["base_lin_vel"], "base_ang_vel": kin["base_ang_vel"],
            "projected_gravity": kin["projected_gravity"], "base_height": base_height[:, None],
            "joint_pos": kin["joint_pos"], "default_joint_pos": self._default_n,
            "joint_vel": kin["joint_vel"], "joint_acc": self._sim.joint_acc,
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

    def _obs_view(self, state: RobotState, kin: dict[str, torch.Tensor]) -> RobotState:
        """What the policy sees next: current kinematics, commands and (reset-zeroed) last actions."""
        obs_state = RobotState.__new__(RobotState)
        obs_state.__dict__.update(state.__dict__)
        obs_state.__dict__.update({k: v.to(self.device) for k, v in kin.items()})
        obs_state.commands = self._commands.to(self.device, copy=True)
        obs_state.actions = self._actions.to(self.device, copy=True)
        return obs_state

    def _observation(self, state: RobotState) -> torch.Tensor:
        return build_observation(state, noise=self.options.obs_noise, generator=self._obs_gen)

    # --- resets, commands, randomisation --------------------------------------------------------

    def _reset_envs(self, ids, yaw: torch.Tensor | None) -> None:
        """Reset the given envs only: new spawn, default joints, zero velocity, fresh bookkeeping."""
        sim, rng = self._sim, self._rng
        ids = torch.as_tensor(ids, dtype=torch.long).reshape(-1).to(sim.device)
        k = len(ids)
        yaw = rng.uniform(-math.pi, math.pi, k) if yaw is None else yaw.to(sim.device)
        if self.terrain.kind == "rough":
            self._levels[ids] = self._pending_levels[ids]
            centers = self._tile_centers[self._levels[ids], self._types[ids]]
        else:
            centers = torch.zeros((k, 2), dtype=torch.float64, device=sim.device)
        xy = centers.to(yaw.dtype) + rng.uniform(-_RESET_SPREAD, _RESET_SPREAD, (k, 2)).to(yaw.dtype)
        ground = self.terrain.height_at_torch(xy[:, 0], xy[:, 1])

        sim.clear(ids)
        qpos = torch.zeros((k, self.model.nq), dtype=yaw.dtype, device=sim.device)
        qpos[:, :2] = xy
        qpos[:, 2] = ground + config.BASE_INIT_HEIGHT
        qpos[:, 3] = torch.cos(0.5 * yaw)
        qpos[:, 6] = torch.sin(0.5 * yaw)
        qpos[:, 7:] = self._default
        sim.qpos[ids] = qpos.to(sim.dtype)
        sim.qvel[ids] = 0.0
        sim.ctrl[ids] = self._default
        self._randomise(ids)
        sim.restarted(ids)

        for buf in (self._actions, self._last_actions, self._air_time,
                    self._contact_time, self._last_air_time, self._last_contact_time):
            buf[ids] = 0.0
        self._episode_step[ids] = 0
        if self._push_steps is not None:
            self._push_timer[ids] = rng.integers(0, self._push_steps, k).to(sim.device)
        if not self.external_commands:
            self._sample_commands(ids)

    def _randomise(self, ids: torch.Tensor) -> None:
        k, o, rng, sim = len(ids), self.options, self._rng, self._sim
        if sim.friction is not None:
            mu = rng.uniform(*o.friction_range, k).to(sim.dtype)
            # both tangential coefficients of every foot's contact pairs (floor, and catch floor on rough)
            sim.friction[ids[:, None], self._foot_pairs[None, :], :2] = mu[:, None, None]
        if sim.body_mass is not None:
            dm = rng.uniform(*o.added_mass_range, k)
            sim.body_mass[ids, self.index.trunk_body] = (self._base_trunk_mass + dm).to(sim.dtype)

    def _sample_commands(self, ids: torch.Tensor) -> None:
        k, rng = len(ids), self._rng
        lo = np.array([self._ranges[n][0] for n in config.COMMAND_NAMES])
        hi = np.array([self._ranges[n][1] for n in config.COMMAND_NAMES])
        cmd = rng.uniform(lo, hi, (k, 3))
        cmd[rng.random(k) < self.options.standing_fraction] = 0.0
        self._commands[ids] = cmd.float()
        self._command_timer[ids] = 0

    def _maybe_push(self) -> None:
        self._push_timer += 1
        due = torch.nonzero(self._push_timer >= self._push_steps).flatten()
        if not len(due):
            return
        self._push_timer[due] = 0
        v = self.options.push_velocity
        kick = self._rng.uniform(-v, v, (len(due), 2)).to(self._sim.dtype)
        self._sim.qvel[due, :2] += kick  # the step that follows starts from it
