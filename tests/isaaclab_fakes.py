"""Stand-ins for the parts of Isaac Lab 2.3.2 that harness/isaaclab/ touches.

Isaac Sim cannot run here, so these mirror the real attribute names, shapes and call order,
read from the isaaclab 2.3.2.post1 wheel's sources (paths below are inside
isaaclab/source/isaaclab/isaaclab/ unless they start with isaaclab_tasks/). Behaviour is
re-implemented from what those files document, not copied. The physics is a toy: perfect
joint-position tracking, a first-order base velocity, a fixed trot for foot contacts.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable

import torch

from harness import config

# PhysX parses the Go2 USD breadth-first, so the articulation's joints come type-major
# (all hips, all thighs, all calves; legs FL FR RL RR) -- what Isaac Lab users print from
# Articulation.joint_names. The backend resolves them by name, never by this assumption.
ISAAC_JOINT_ORDER = tuple(f"{leg}_{part}_joint" for part in ("hip", "thigh", "calf") for leg in config.LEGS)
# Body order comes from the USD (not in Isaac Lab's source); Go2 also has head links. Any order
# works because the backend resolves bodies by name; this one is deliberately not leg-major.
GO2_BODY_NAMES = (
    "base", "FL_hip", "FR_hip", "Head_upper", "RL_hip", "RR_hip", "FL_thigh", "FR_thigh", "Head_lower",
    "RL_thigh", "RR_thigh", "FL_calf", "FR_calf", "RL_calf", "RR_calf", "FL_foot", "FR_foot", "RL_foot", "RR_foot",
)


def resolve_matching_names(keys, names, preserve_order: bool = False) -> tuple[list[int], list[str]]:
    """Like isaaclab.utils.string_utils.resolve_matching_names: keys are regexes, full match."""
    keys = [keys] if isinstance(keys, str) else list(keys)
    hits = []
    for k in keys:
        found = [i for i, n in enumerate(names) if re.fullmatch(k, n)]
        if not found:
            raise ValueError(f"Not all regular expressions are matched! {k!r} matched none of {list(names)}")
        hits.append(found)
    if preserve_order:
        ids = [i for found in hits for i in found]
    else:
        ids = sorted({i for found in hits for i in found})
    return ids, [names[i] for i in ids]


def quat_apply_inverse(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate world vectors into the frame of (w, x, y, z) quaternions."""
    w, u = q[:, :1], q[:, 1:]
    return v * (2.0 * w * w - 1.0) - 2.0 * w * torch.cross(u, v, dim=-1) + 2.0 * u * (u * v).sum(-1, keepdim=True)


def yaw_of(q: torch.Tensor) -> torch.Tensor:
    w, x, y, z = q.unbind(-1)
    return torch.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


# --- assets/articulation/articulation_data.py, articulation.py ---------------------------


class FakeArticulationData:
    """Mirrors ArticulationData: joint tensors in articulation (type-major) order, (N, J); body
    tensors (N, B, 3); root_lin_vel_b / root_ang_vel_b (N, 3) are the com velocities in the base
    frame; projected_gravity_b is derived from root_link_quat_w, as in the real class."""

    def __init__(self, n: int, joint_names, body_names, device="cpu"):
        j, b = len(joint_names), len(body_names)
        z = lambda *s: torch.zeros(*s, device=device)  # noqa: E731
        self.joint_names = list(joint_names)
        self.body_names = list(body_names)
        by_name = dict(zip(config.JOINT_NAMES, config.DEFAULT_JOINT_POS))
        self.default_joint_pos = torch.tensor([[by_name[nm] for nm in joint_names]] * n, device=device)
        self.default_joint_vel = z(n, j)
        self.joint_pos = self.default_joint_pos.clone()
        self.joint_vel = z(n, j)
        self.joint_acc = z(n, j)
        self.applied_torque = z(n, j)
        self.computed_torque = z(n, j)
        self.root_pos_w = z(n, 3)
        self.root_quat_w = torch.tensor([[1.0, 0.0, 0.0, 0.0]] * n, device=device)
        self.root_lin_vel_b = z(n, 3)
        self.root_ang_vel_b = z(n, 3)
        self.body_pos_w = z(n, b, 3)
        self.body_lin_vel_w = z(n, b, 3)
        self.GRAVITY_VEC_W = torch.tensor([[0.0, 0.0, -1.0]] * n, device=device)

    @property
    def projected_gravity_b(self) -> torch.Tensor:
        return quat_apply_inverse(self.root_quat_w, self.GRAVITY_VEC_W)

    @property
    def root_link_pose_w(self) -> torch.Tensor:
        return torch.cat((self.root_pos_w, self.root_quat_w), dim=-1)


class FakeArticulation:
    """Mirrors Articulation: joint_names / body_names, find_joints / find_bodies, write_root_pose_to_sim."""

    def __init__(self, n: int, joint_names=ISAAC_JOINT_ORDER, body_names=GO2_BODY_NAMES, device="cpu"):
        self.data = FakeArticulationData(n, joint_names, body_names, device)
        self.num_instances = n
        self.device = device

    @property
    def joint_names(self) -> list[str]:
        return self.data.joint_names

    @property
    def body_names(self) -> list[str]:
        return self.data.body_names

    @property
    def num_joints(self) -> int:
        return len(self.data.joint_names)

    def find_bodies(self, name_keys, preserve_order: bool = False):
        return resolve_matching_names(name_keys, self.body_names, preserve_order)

    def find_joints(self, name_keys, joint_subset=None, preserve_order: bool = False):
        return resolve_matching_names(name_keys, joint_subset or self.joint_names, preserve_order)

    def write_root_pose_to_sim(self, root_pose: torch.Tensor, env_ids=None):
        ids = slice(None) if env_ids is None else env_ids
        self.data.root_pos_w[ids] = root_pose[:, :3]
        self.data.root_quat_w[ids] = root_pose[:, 3:7]


# --- sensors/contact_sensor/contact_sensor.py, contact_sensor_data.py, contact_sensor_cfg.py


class FakeContactSensorData:
    """net_forces_w (N, B, 3); net_forces_w_history (N, T, B, 3), newest first; air/contact times (N, B)."""

    def __init__(self, n: int, b: int, history: int, device="cpu"):
        z = lambda *s: torch.zeros(*s, device=device)  # noqa: E731
        self.net_forces_w = z(n, b, 3)
        self.net_forces_w_history = z(n, history, b, 3)
        self.current_air_time = z(n, b)
        self.last_air_time = z(n, b)
        self.current_contact_time = z(n, b)
        self.last_contact_time = z(n, b)


class FakeContactSensor:
    """A ContactSensor on "{ENV_REGEX_NS}/Robot/.*" (history_length 3, track_air_time, threshold 1 N)."""

    def __init__(self, n: int, body_names=GO2_BODY_NAMES, history_length: int = 3, device="cpu"):
        self.cfg = SimpleNamespace(history_length=history_length, track_air_time=True, force_threshold=1.0)
        self.body_names = list(body_names)
        self.num_bodies = len(body_names)
        self.data = FakeContactSensorData(n, self.num_bodies, history_length, device)

    def find_bodies(self, name_keys, preserve_order: bool = False):
        return resolve_matching_names(name_keys, self.body_names, preserve_order)

    def compute_first_contact(self, dt: float, abs_tol: float = 1.0e-8) -> torch.Tensor:
        t = self.data.current_contact_time
        return (t > 0.0) * (t < dt + abs_tol)

    def update(self, dt: float, forces: torch.Tensor) -> None:
        """One sensor update (every physics step): history shift and air/contact time bookkeeping."""
        d = self.data
        d.net_forces_w[:] = forces
        d.net_forces_w_history[:] = d.net_forces_w_history.roll(1, dims=1)
        d.net_forces_w_history[:, 0] = forces
        touching = forces.norm(dim=-1) > self.cfg.force_threshold
        landed = (d.current_air_time > 0) & touching
        lifted = (d.current_contact_time > 0) & ~touching
        d.last_air_time[:] = torch.where(landed, d.current_air_time + dt, d.last_air_time)
        d.current_air_time[:] = torch.where(touching, 0.0, d.current_air_time + dt)
        d.last_contact_time[:] = torch.where(lifted, d.current_contact_time + dt, d.last_contact_time)
        d.current_contact_time[:] = torch.where(touching, d.current_contact_time + dt, 0.0)

    def reset(self, env_ids) -> None:
        d = self.data
        for t in (d.net_forces_w, d.net_forces_w_history, d.current_air_time, d.last_air_time,
                  d.current_contact_time, d.last_contact_time):
            t[env_ids] = 0.0


# --- sensors/ray_caster/ray_caster_data.py -----------------------------------------------


class FakeRayCaster:
    """The Go2 height scanner: yaw-aligned 1.6 m x 1.0 m grid, 0.1 m, under the base. data.ray_hits_w (N, R, 3)."""

    def __init__(self, n: int, ground: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], device="cpu"):
        xs = torch.linspace(-0.8, 0.8, 17, device=device)
        ys = torch.linspace(-0.5, 0.5, 11, device=device)
        gx, gy = torch.meshgrid(xs, ys, indexing="ij")
        self._grid = torch.stack((gx.flatten(), gy.flatten()), dim=-1)  # (R, 2)
        self.ground = ground
        self.data = SimpleNamespace(pos_w=torch.zeros(n, 3, device=device), quat_w=None,
                                    ray_hits_w=torch.zeros(n, self._grid.shape[0], 3, device=device))

    def update(self, base_pos_w: torch.Tensor, yaw: torch.Tensor) -> None:
        c, s = torch.cos(yaw)[:, None], torch.sin(yaw)[:, None]
        gx, gy = self._grid[:, 0][None], self._grid[:, 1][None]
        x = base_pos_w[:, :1] + c * gx - s * gy
        y = base_pos_w[:, 1:2] + s * gx + c * gy
        self.data.pos_w = base_pos_w.clone()
        self.data.ray_hits_w = torch.stack((x, y, self.ground(x, y)), dim=-1)


# --- envs/mdp/commands/velocity_command.py, managers/command_manager.py --------------------


class FakeUniformVelocityCommand:
    """UniformVelocityCommand: vel_command_b (N, 3) body-frame command, is_standing_env, metrics.

    Metric semantics of the real class (_update_metrics / CommandTerm.reset): every step adds
    ||cmd_xy - root_lin_vel_b_xy|| / (resampling_time_range[1] / step_dt); the sum is zeroed only
    when the episode resets, where its mean over the resetting envs is logged.
    """

    def __init__(self, cfg, robot: FakeArticulation, n: int, step_dt: float, device="cpu"):
        self.cfg = cfg
        self.robot = robot
        self.step_dt = step_dt
        self.vel_command_b = torch.zeros(n, 3, device=device)
        self.is_standing_env = torch.zeros(n, dtype=torch.bool, device=device)
        self.time_left = torch.zeros(n, device=device)
        self.metrics = {"error_vel_xy": torch.zeros(n, device=device), "error_vel_yaw": torch.zeros(n, device=device)}

    @property
    def command(self) -> torch.Tensor:
        return self.vel_command_b

    def compute(self, dt: float) -> None:
        steps = self.cfg.resampling_time_range[1] / self.step_dt
        d = self.robot.data
        self.metrics["error_vel_xy"] += (self.vel_command_b[:, :2] - d.root_lin_vel_b[:, :2]).norm(dim=-1) / steps
        self.metrics["error_vel_yaw"] += (self.vel_command_b[:, 2] - d.root_ang_vel_b[:, 2]).abs() / steps
        self.time_left -= dt
        due = (self.time_left <= 0.0).nonzero().flatten()
        if len(due):
            self._resample(due)
        self.vel_command_b[self.is_standing_env] = 0.0

    def reset(self, env_ids) -> dict:
        out = {}
        for k, v in self.metrics.items():
            out[k] = float(v[env_ids].mean())
            v[env_ids] = 0.0
        self._resample(env_ids)
        return out

    def _resample(self, ids) -> None:
        lo, hi = self.cfg.resampling_time_range
        self.time_left[ids] = torch.empty(len(ids)).uniform_(lo, hi).to(self.time_left.device)
        r = self.cfg.ranges
        for i, (a, b) in enumerate((r.lin_vel_x, r.lin_vel_y, r.ang_vel_z)):
            self.vel_command_b[ids, i] = torch.empty(len(ids)).uniform_(a, b).to(self.vel_command_b.device)
        self.is_standing_env[ids] = (torch.rand(len(ids)) <= self.cfg.rel_standing_envs).to(self.is_standing_env.device)


class FakeCommandManager:
    def __init__(self, terms: dict):
        self._terms = terms

    def get_term(self, name):
        return self._terms[name]

    def get_command(self, name):
        return self._terms[name].command

    def compute(self, dt):
        for t in self._terms.values():
            t.compute(dt)

    def reset(self, env_ids) -> dict:
        return {f"Metrics/{name}/{k}": v for name, t in self._terms.items() for k, v in t.reset(env_ids).items()}


# --- terrains/terrain_importer.py ----------------------------------------------------------


class FakeTerrainImporter:
    """Curriculum origins: terrain_origins (rows, cols, 3); terrain_levels / terrain_types (N,); env_origins (N, 3)."""

    def __init__(self, n: int, rows: int = config.TERRAIN_LEVELS, cols: int = 4, max_init_level: int = 5, device="cpu"):
        r, c = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
        self.terrain_origins = torch.stack((r * 8.0, c * 8.0, r * 0.05), dim=-1).float().to(device)
        self.terrain_levels = torch.randint(0, max_init_level + 1, (n,), device=device)
        self.terrain_types = (torch.arange(n, device=device) * cols) // n
        self.env_origins = self.terrain_origins[self.terrain_levels, self.terrain_types].clone()


# --- cfg objects (isaaclab_tasks/manager_based/locomotion/velocity/velocity_env_cfg.py and
#     .../config/go2/rough_env_cfg.py, flat_env_cfg.py), names as there ---------------------


@dataclass
class RewardTermCfg:          # managers/manager_term_cfg.py
    func: Callable
    weight: float = 0.0
    params: dict = field(default_factory=dict)


@dataclass
class TerminationTermCfg:
    func: Callable
    params: dict = field(default_factory=dict)
    time_out: bool = False


@dataclass
class EventTermCfg:
    func: Callable
    mode: str = ""
    interval_range_s: tuple | None = None
    params: dict = field(default_factory=dict)


@dataclass
class SceneEntityCfg:
    name: str
    body_names: Any = None


def push_by_setting_velocity(env, env_ids, velocity_range, asset_cfg=None):  # envs/mdp/events.py
    data = env.scene["robot"].data
    for i, key in enumerate(("x", "y")):
        lo, hi = velocity_range.get(key, (0.0, 0.0))
        data.root_lin_vel_b[env_ids, i] += torch.empty(len(env_ids)).uniform_(lo, hi)


def fake_terms():
    from harness.isaaclab.task_config import IsaacTerms

    return IsaacTerms(RewardTermCfg, TerminationTermCfg, EventTermCfg, push_by_setting_velocity)


def _time_out(env) -> torch.Tensor:               # envs/mdp/terminations.py: time_out
    return env.episode_length_buf >= env.max_episode_length


def _illegal_contact(env, threshold: float, sensor_cfg) -> torch.Tensor:   # terminations.py: illegal_contact
    sensor = env.scene.sensors[sensor_cfg.name]
    ids, _ = sensor.find_bodies(sensor_cfg.body_names)
    peak = sensor.data.net_forces_w_history[:, :, ids].norm(dim=-1).amax(dim=1)
    return (peak > threshold).any(dim=1)


def _zero_reward(env, **kwargs) -> torch.Tensor:
    return torch.zeros(env.num_envs)


def make_go2_cfg(terrain: str = "rough") -> SimpleNamespace:
    """The registry's UnitreeGo2RoughEnvCfg / UnitreeGo2FlatEnvCfg after __post_init__ (the parts we edit)."""
    S = SimpleNamespace
    sub_terrains = {k: S(proportion=p) for k, p in (
        ("pyramid_stairs", 0.2), ("pyramid_stairs_inv", 0.2), ("boxes", 0.2),
        ("random_rough", 0.2), ("hf_pyramid_slope", 0.1), ("hf_pyramid_slope_inv", 0.1))}
    rough = terrain == "rough"
    generator = S(sub_terrains=sub_terrains, num_rows=10, num_cols=20, curriculum=True, seed=None) if rough else None
    rew = lambda w, **p: RewardTermCfg(func=_zero_reward, weight=w, params=p)  # noqa: E731
    return S(
        seed=None,
        decimation=4,
        episode_length_s=20.0,
        sim=S(dt=0.005, device="cuda:0", render_interval=4),
        actions=S(joint_pos=S(asset_name="robot", joint_names=[".*"], scale=0.25, use_default_offset=True)),
        scene=S(
            num_envs=4096,
            env_spacing=2.5,
            terrain=S(terrain_type="generator" if rough else "plane", terrain_generator=generator,
                      max_init_terrain_level=5),
            height_scanner=S(prim_path="{ENV_REGEX_NS}/Robot/base") if rough else None,
            contact_forces=S(history_length=3, track_air_time=True),
        ),
        observations=S(policy=S(
            base_lin_vel=S(), base_ang_vel=S(), projected_gravity=S(), velocity_commands=S(),
            joint_pos=S(), joint_vel=S(), actions=S(), height_scan=S() if rough else None,
            enable_corruption=True, concatenate_terms=True)),
        commands=S(base_velocity=S(
            asset_name="robot", resampling_time_range=(10.0, 10.0), rel_standing_envs=0.02, rel_heading_envs=1.0,
            heading_command=True, heading_control_stiffness=0.5, debug_vis=True,
            ranges=S(lin_vel_x=(-1.0, 1.0), lin_vel_y=(-1.0, 1.0), ang_vel_z=(-1.0, 1.0),
                     heading=(-math.pi, math.pi)))),
        events=S(
            physics_material=EventTermCfg(func=None, mode="startup", params={
                "static_friction_range": (0.8, 0.8), "dynamic_friction_range": (0.6, 0.6),
                "restitution_range": (0.0, 0.0), "num_buckets": 64}),
            add_base_mass=EventTermCfg(func=None, mode="startup", params={
                "mass_distribution_params": (-1.0, 3.0), "operation": "add"}),
            base_com=None,
            base_external_force_torque=EventTermCfg(func=None, mode="reset", params={}),
            reset_base=EventTermCfg(func=None, mode="reset", params={}),
            reset_robot_joints=EventTermCfg(func=None, mode="reset", params={"position_range": (1.0, 1.0)}),
            push_robot=None,
        ),
        rewards=S(
            track_lin_vel_xy_exp=rew(1.5), track_ang_vel_z_exp=rew(0.75), lin_vel_z_l2=rew(-2.0),
            ang_vel_xy_l2=rew(-0.05), dof_torques_l2=rew(-0.0002), dof_acc_l2=rew(-2.5e-7),
            action_rate_l2=rew(-0.01), feet_air_time=rew(0.01), undesired_contacts=None,
            flat_orientation_l2=rew(-2.5 if not rough else 0.0), dof_pos_limits=rew(0.0),
        ),
        terminations=S(
            time_out=TerminationTermCfg(func=_time_out, time_out=True),
            base_contact=TerminationTermCfg(func=_illegal_contact, params={
                "sensor_cfg": SceneEntityCfg("contact_forces", body_names="base"), "threshold": 1.0}),
        ),
        curriculum=S(terrain_levels=S(func=None) if rough else None),
    )


# --- envs/manager_based_rl_env.py ----------------------------------------------------------


class FakeScene:
    def __init__(self, robot, sensors: dict, terrain):
        self._entities = {"robot": robot}
        self.sensors = sensors
        self.terrain = terrain

    def __getitem__(self, key):
        return self._entities[key] if key in self._entities else self.sensors[key]

    @property
    def env_origins(self) -> torch.Tensor:
        return self.terrain.env_origins


class FakeManagerBasedRLEnv:
    """ManagerBasedRLEnv.step() order: process actions; `decimation` x (apply, physics, sensor
    update); episode_length_buf += 1; terminations; rewards (each non-None cfg term, weight != 0);
    reset of done envs (scene, reset events, managers -> extras["log"]); command compute; obs.

    Test controls: base_contact_at {step: [env ids]} and nan_at {step: [env ids]} keyed by
    common_step_counter (1 = first step); `ground(x, y)` gives terrain height (rough scenes).
    """

    def __init__(self, cfg, device="cpu", seed: int = 0):
        torch.manual_seed(seed)
        self.cfg = cfg
        self.device = device
        self.num_envs = n = cfg.scene.num_envs
        self.physics_dt = cfg.sim.dt
        self.step_dt = cfg.sim.dt * cfg.decimation
        self.max_episode_length = math.ceil(cfg.episode_length_s / self.step_dt)
        self.episode_length_buf = torch.zeros(n, dtype=torch.long, device=device)
        self.common_step_counter = 0
        self.reset_buf = torch.zeros(n, dtype=torch.bool, device=device)
        self.reset_terminated = torch.zeros(n, dtype=torch.bool, device=device)
        self.reset_time_outs = torch.zeros(n, dtype=torch.bool, device=device)
        self.extras: dict = {}
        self.closed = False
        self.base_contact_at: dict[int, list[int]] = {}
        self.nan_at: dict[int, list[int]] = {}
        self.ground = lambda x, y: 0.02 * torch.sin(x) * torch.cos(y)
        robot = FakeArticulation(n, device=device)
        sensors = {"contact_forces": FakeContactSensor(n, device=device)}
        rough = cfg.scene.terrain.terrain_type == "generator"
        if rough:
            sensors["height_scanner"] = FakeRayCaster(n, lambda x, y: self.ground(x, y), device=device)
        terrain = FakeTerrainImporter(n, device=device) if rough else SimpleNamespace(
            env_origins=torch.zeros(n, 3, device=device))
        self.scene = FakeScene(robot, sensors, terrain)
        self.sim = SimpleNamespace(forward=self._forward, forward_calls=0)
        cmd = FakeUniformVelocityCommand(cfg.commands.base_velocity, robot, n, self.step_dt, device)
        self.command_manager = FakeCommandManager({"base_velocity": cmd})
        self._phase = torch.rand(n, device=device) * 2 * math.pi
        self._foot_ids = [GO2_BODY_NAMES.index(f) for f in config.FOOT_NAMES]
        self._leg_phase = torch.tensor([0.0, math.pi, math.pi, 0.0])            # FL+RR, FR+RL
        self._hip_x = torch.tensor([0.19, 0.19, -0.19, -0.19])   # FL FR RL RR
        self._hip_y = torch.tensor([0.14, -0.14, 0.14, -0.14])
        self.log_isaac = []   # (vel_command_b, root_lin_vel_b) at each reward computation

    # the two lists of active manager terms, as the managers would prepare them
    def _terms(self, group):
        return [(k, v) for k, v in vars(group).items() if v is not None and not k.startswith("_")]

    def _forward(self):
        self.sim.forward_calls += 1

    def reset(self, seed=None, env_ids=None, options=None):
        self._reset_idx(torch.arange(self.num_envs, device=self.device))
        self.sim.forward()
        return torch.zeros(self.num_envs, 48), self.extras

    def step(self, action: torch.Tensor):
        assert action.shape == (self.num_envs, 12)
        data = self.scene["robot"].data
        target = data.default_joint_pos + self.cfg.actions.joint_pos.scale * action
        for _ in range(self.cfg.decimation):
            self._physics(target)
        self.common_step_counter += 1
        self.episode_length_buf += 1
        for ids in self.nan_at.get(self.common_step_counter, []):
            data.joint_vel[ids] = float("nan")
        # terminations
        self.reset_terminated = torch.zeros_like(self.reset_buf)
        self.reset_time_outs = torch.zeros_like(self.reset_buf)
        for _, term in self._terms(self.cfg.terminations):
            value = term.func(self, **term.params).bool()
            if term.time_out:
                self.reset_time_outs |= value
            else:
                self.reset_terminated |= value
        self.reset_buf = self.reset_terminated | self.reset_time_outs
        # rewards
        cmd = self.command_manager.get_term("base_velocity")
        self.log_isaac.append((cmd.vel_command_b.clone(), data.root_lin_vel_b.clone()))
        reward = torch.zeros(self.num_envs)
        for _, term in self._terms(self.cfg.rewards):
            if term.weight != 0.0:
                reward += term.func(self, **term.params) * term.weight * self.step_dt
        ids = self.reset_buf.nonzero().flatten()
        if len(ids):
            self._reset_idx(ids)
        self.command_manager.compute(self.step_dt)
        return torch.zeros(self.num_envs, 48), reward, self.reset_terminated, self.reset_time_outs, self.extras

    def close(self):
        self.closed = True

    # --- toy physics -------------------------------------------------------------------
    def _physics(self, target: torch.Tensor) -> None:
        dt = self.physics_dt
        data = self.scene["robot"].data
        old_pos, old_vel = data.joint_pos.clone(), data.joint_vel.clone()
        data.applied_torque[:] = (config.KP * (target - old_pos) - config.KD * old_vel).clamp(
            -config.TORQUE_LIMIT, config.TORQUE_LIMIT)
        data.joint_pos[:] = target                     # perfect position tracking
        data.joint_vel[:] = (target - old_pos) / dt
        data.joint_acc[:] = (data.joint_vel - old_vel) / dt
        cmd = self.command_manager.get_command("base_velocity")
        push = (target[:, :2] - data.default_joint_pos[:, :2])   # the action moves the base too
        data.root_lin_vel_b[:, :2] = 0.95 * data.root_lin_vel_b[:, :2] + 0.05 * (0.8 * cmd[:, :2] + 0.5 * push)
        data.root_ang_vel_b[:, 2] = 0.95 * data.root_ang_vel_b[:, 2] + 0.05 * cmd[:, 2]
        yaw = yaw_of(data.root_quat_w)
        c, s = torch.cos(yaw), torch.sin(yaw)
        v = data.root_lin_vel_b
        data.root_pos_w[:, 0] += (c * v[:, 0] - s * v[:, 1]) * dt
        data.root_pos_w[:, 1] += (s * v[:, 0] + c * v[:, 1]) * dt
        # trot: diagonal pairs alternate, 2 Hz
        self._phase += 2 * math.pi * 2.0 * dt
        names = data.body_names
        feet = self._foot_ids
        swing = torch.sin(self._phase[:, None] + self._leg_phase)                    # (N, 4)
        x = data.root_pos_w[:, :1] + c[:, None] * self._hip_x - s[:, None] * self._hip_y
        y = data.root_pos_w[:, 1:2] + s[:, None] * self._hip_x + c[:, None] * self._hip_y
        new = torch.stack((x, y, self.ground(x, y) + 0.02 + 0.06 * swing.clamp(min=0.0)), dim=-1)
        data.body_lin_vel_w[:, feet] = (new - data.body_pos_w[:, feet]) / dt
        data.body_pos_w[:, feet] = new
        forces = torch.zeros(self.num_envs, len(names), 3)
        forces[:, feet, 2] = torch.where(swing <= 0.0, 40.0, 0.0)
        ground = self.ground
        base = names.index("base")
        data.root_pos_w[:, 2] = ground(data.root_pos_w[:, 0], data.root_pos_w[:, 1]) + 0.3
        data.body_pos_w[:, base] = data.root_pos_w
        for i in self.base_contact_at.get(self.common_step_counter + 1, []):
            forces[i, base, 2] = 50.0
        self.scene.sensors["contact_forces"].update(dt, forces)
        if "height_scanner" in self.scene.sensors:
            self.scene.sensors["height_scanner"].update(data.root_pos_w, yaw)

    def _reset_idx(self, ids: torch.Tensor) -> None:
        data = self.scene["robot"].data
        k = len(ids)
        yaw = (torch.rand(k) * 2 - 1) * 3.14
        data.root_pos_w[ids] = self.scene.env_origins[ids] + torch.cat(
            ((torch.rand(k, 2) - 0.5), torch.full((k, 1), 0.3)), dim=1)
        data.root_quat_w[ids] = torch.stack((torch.cos(yaw / 2), 0 * yaw, 0 * yaw, torch.sin(yaw / 2)), dim=-1)
        data.root_lin_vel_b[ids] = 0.0
        data.root_ang_vel_b[ids] = 0.0
        data.joint_pos[ids] = data.default_joint_pos[ids]
        data.joint_vel[ids] = 0.0
        self.scene.sensors["contact_forces"].reset(ids)
        self.extras["log"] = dict(self.command_manager.reset(ids))
        self.episode_length_buf[ids] = 0
