"""Stand-ins for the parts of Isaac Lab 3.0.0 that harness/isaaclab/ touches.

Isaac Lab 3.0 needs Python 3.12 and its own environment (.venv-isaaclab), so the default
environment's tests run the adapter against these. They mirror the real attribute names, shapes
and call order, read from the isaaclab 3.0.0 wheel's sources (paths below are inside the wheel's
isaaclab/ unless they start with isaaclab_tasks/ or isaaclab_newton/): data properties are
ProxyArrays (`.torch`, a zero-copy view), quaternions are x y z w, setters are
write_*_to_sim_index(..., env_ids=...), the contact sensor has net_normal_forces_w(_history) and
find_sensors / sensor_names, torques are `articulation.actuators.applied_effort`. Behaviour is
re-implemented from what those files document, not copied. The physics is a toy: perfect
joint-position tracking, a first-order base velocity, a fixed trot for foot contacts. The cfg's
event terms do run, through a stand-in EventManager, as in Isaac Lab: the robot is reset, pushed
and randomised only by what the (harness-edited) cfg configures. tests/test_isaaclab_real.py
checks the adapter against the real package wherever .venv-isaaclab exists.
"""

from __future__ import annotations

import inspect
import math
import re
from dataclasses import MISSING, dataclass, field, is_dataclass
from types import SimpleNamespace
from typing import Any, Callable

import torch

from harness import config

# In 3.0 the public joint order follows the physics backend's solver view unless
# ArticulationCfg.joint_ordering pins it ("physx": type-major, all hips, all thighs, all calves;
# "mjwarp": the USD's depth-first order, leg-major). The fake uses the type-major one, so that the
# name-based map is exercised; the backend resolves joints by name, never by this assumption.
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


def _proxied(attr: str) -> property:
    """A read-only data property handing out the stored tensor as 3.0 does, wrapped in a ProxyArray."""
    return property(lambda self: ProxyArray(getattr(self, attr)))


class ProxyArray:
    """utils/warp/proxy_array.py: what 3.0's data properties return. `.torch` is a zero-copy torch
    view of the underlying (Warp) array, so in-place writes through it reach the data; `.warp` is
    the Warp array itself (none here). The real one still bridges implicit tensor use (indexing,
    arithmetic) with a one-time DeprecationWarning; the fake refuses it, so an adapter that relies
    on the deprecated bridge fails here (tests/test_isaaclab_real.py turns that warning into an error)."""

    __slots__ = ("_t",)

    def __init__(self, tensor: torch.Tensor):
        object.__setattr__(self, "_t", tensor)

    @property
    def torch(self) -> torch.Tensor:
        return self._t

    @property
    def warp(self):
        raise NotImplementedError("the fakes hold torch tensors only")

    @property
    def shape(self):
        return tuple(self._t.shape)

    def __setattr__(self, name, value):
        raise AttributeError("ProxyArray is read-only")


def quat_apply(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate vectors given in the frame of (x, y, z, w) quaternions (Isaac Lab 3.0) into the world."""
    w, u = q[:, 3:], q[:, :3]
    return v * (2.0 * w * w - 1.0) + 2.0 * w * torch.cross(u, v, dim=-1) + 2.0 * u * (u * v).sum(-1, keepdim=True)


def quat_apply_inverse(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate world vectors into the frame of (x, y, z, w) quaternions."""
    w, u = q[:, 3:], q[:, :3]
    return v * (2.0 * w * w - 1.0) - 2.0 * w * torch.cross(u, v, dim=-1) + 2.0 * u * (u * v).sum(-1, keepdim=True)


def quat_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product of (x, y, z, w) quaternions."""
    ax, ay, az, aw = a.unbind(-1)
    bx, by, bz, bw = b.unbind(-1)
    return torch.stack((aw * bx + ax * bw + ay * bz - az * by, aw * by - ax * bz + ay * bw + az * bx,
                        aw * bz + ax * by - ay * bx + az * bw, aw * bw - ax * bx - ay * by - az * bz), dim=-1)


def quat_from_euler_xyz(roll: torch.Tensor, pitch: torch.Tensor, yaw: torch.Tensor) -> torch.Tensor:
    """(x, y, z, w) of the rotation yaw (z) after pitch (y) after roll (x), as isaaclab.utils.math."""
    cr, sr = torch.cos(roll / 2), torch.sin(roll / 2)
    cp, sp = torch.cos(pitch / 2), torch.sin(pitch / 2)
    cy, sy = torch.cos(yaw / 2), torch.sin(yaw / 2)
    return torch.stack((cy * sr * cp - sy * cr * sp, cy * cr * sp + sy * sr * cp,
                        sy * cr * cp - cy * sr * sp, cy * cr * cp + sy * sr * sp), dim=-1)


def sample_uniform(lower, upper, size, device="cpu") -> torch.Tensor:
    """isaaclab.utils.math.sample_uniform: U(lower, upper) of `size`; bounds may be per-column tensors."""
    size = (size,) if isinstance(size, int) else tuple(size)
    return torch.rand(*size, device=device) * (upper - lower) + lower


def yaw_of(q: torch.Tensor) -> torch.Tensor:
    x, y, z, w = q.unbind(-1)
    return torch.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


# --- utils/configclass.py, managers/manager_term_cfg.py, managers/scene_entity_cfg.py -------


def _missing():
    """A field left as dataclasses.MISSING. configclass turns `x: T = MISSING` into a default
    factory, so the cfg constructs and the gap only surfaces in validate()."""
    return field(default_factory=lambda: MISSING)


def validate_cfg(obj, prefix: str = "") -> list[str]:
    """Like configclass's validate() (utils/configclass.py _validate): collects the dotted paths
    of MISSING values through nested cfgs, dicts, lists and tuples, and raises TypeError naming
    them at the top-level call. Only cfg-like objects are walked (dataclasses, namespaces)."""
    if isinstance(obj, type(MISSING)):       # by type, as the real one: deepcopies of MISSING count
        return [prefix]
    if isinstance(obj, (list, tuple)):
        items = {f"{prefix}[{i}]": v for i, v in enumerate(obj)}
    elif isinstance(obj, dict):
        items = {f"{prefix}.{k}" if prefix else str(k): v for k, v in obj.items()}
    elif isinstance(obj, SimpleNamespace) or (is_dataclass(obj) and not isinstance(obj, type)):
        items = {f"{prefix}.{k}" if prefix else k: v for k, v in vars(obj).items() if not k.startswith("__")}
    else:
        return []
    missing = [m for path, v in items.items() for m in validate_cfg(v, path)]
    if prefix == "" and missing:
        listed = "\n".join(f"  - {m}" for m in missing)
        raise TypeError(f"Missing values detected in object {type(obj).__name__} for the following fields:\n{listed}\n")
    return missing


@dataclass
class ManagerTermBaseCfg:
    func: Callable = _missing()
    params: dict = field(default_factory=dict)

    def validate(self) -> list[str]:
        return validate_cfg(self)


@dataclass
class RewardTermCfg(ManagerTermBaseCfg):
    weight: float = _missing()        # real: MISSING, so an unset weight fails validate()


@dataclass
class TerminationTermCfg(ManagerTermBaseCfg):
    time_out: bool = False


@dataclass
class EventTermCfg(ManagerTermBaseCfg):
    mode: str = _missing()            # real: MISSING, so an unset mode fails validate()
    interval_range_s: tuple | None = None
    is_global_time: bool = False
    min_step_count_between_reset: int = 0


@dataclass
class SceneEntityCfg:
    name: str = _missing()
    joint_names: Any = None
    joint_ids: Any = field(default_factory=lambda: slice(None))
    body_names: Any = None
    body_ids: Any = field(default_factory=lambda: slice(None))
    preserve_order: bool = False

    def resolve(self, scene) -> None:
        """Names (regexes) to indices on the scene entity; all of them in entity order -> slice(None)."""
        entity = scene[self.name]
        if self.joint_names is not None:
            self.joint_names = [self.joint_names] if isinstance(self.joint_names, str) else list(self.joint_names)
            self.joint_ids, _ = entity.find_joints(self.joint_names, preserve_order=self.preserve_order)
            if len(self.joint_ids) == entity.num_joints and self.joint_names == list(entity.joint_names):
                self.joint_ids = slice(None)
        if self.body_names is not None:
            self.body_names = [self.body_names] if isinstance(self.body_names, str) else list(self.body_names)
            self.body_ids, _ = entity.find_bodies(self.body_names, preserve_order=self.preserve_order)
            if len(self.body_ids) == entity.num_bodies and self.body_names == list(entity.body_names):
                self.body_ids = slice(None)


# --- assets/articulation/articulation_data.py, articulation.py ---------------------------


# Toy per-body masses (kg) by name: the Go2 USD's values are not in Isaac Lab's source.
_TOY_MASS = {"base": 6.921, "hip": 0.678, "thigh": 1.152, "calf": 0.154, "foot": 0.04, "Head": 0.001}
# Go2 init_state.pos (isaaclab_assets/robots/unitree.py): what reset_root_state_uniform offsets from.
GO2_INIT_POS = (0.0, 0.0, 0.4)


def _toy_mass(body: str) -> float:
    return next(m for key, m in _TOY_MASS.items() if key in body)


class FakeArticulationData:
    """Mirrors 3.0's ArticulationData: every property is a ProxyArray (`.torch`); joint arrays in
    articulation order, (N, J); body arrays (N, B, 3); quaternions x y z w. The root velocity lives
    in the world frame, root_com_vel_w (N, 6) = [lin, ang], as the solver reports it; root_vel_w /
    root_lin_vel_w / root_ang_vel_w are views of it, and root_lin_vel_b / root_ang_vel_b (N, 3) are
    derived from it and root_quat_w on every read, like projected_gravity_b. Writing a _b array
    therefore changes nothing, as in Isaac Lab. The fake's own physics writes the `_` tensors."""

    def __init__(self, n: int, joint_names, body_names, device="cpu"):
        j, b = len(joint_names), len(body_names)
        z = lambda *s: torch.zeros(*s, device=device)  # noqa: E731
        self.joint_names = list(joint_names)
        self.body_names = list(body_names)
        by_name = dict(zip(config.JOINT_NAMES, config.DEFAULT_JOINT_POS))
        self._default_joint_pos = torch.tensor([[by_name[nm] for nm in joint_names]] * n, device=device)
        self._default_joint_vel = z(n, j)
        self._default_root_pose = torch.tensor([[*GO2_INIT_POS, 0.0, 0.0, 0.0, 1.0]] * n, device=device)
        self._default_root_vel = z(n, 6)
        self._body_mass = torch.tensor([[_toy_mass(nm) for nm in body_names]] * n, device=device)
        self._joint_pos = self._default_joint_pos.clone()
        self._joint_vel = z(n, j)
        self._joint_acc = z(n, j)
        self._root_pos_w = z(n, 3)
        self._root_quat_w = torch.tensor([[0.0, 0.0, 0.0, 1.0]] * n, device=device)
        self._root_com_vel_w = z(n, 6)
        self._body_pos_w = z(n, b, 3)
        self._body_lin_vel_w = z(n, b, 3)
        self._gravity_vec_w = torch.tensor([[0.0, 0.0, -1.0]] * n, device=device)

    default_joint_pos = _proxied("_default_joint_pos")
    default_joint_vel = _proxied("_default_joint_vel")
    default_root_pose = _proxied("_default_root_pose")
    default_root_vel = _proxied("_default_root_vel")
    body_mass = _proxied("_body_mass")
    joint_pos = _proxied("_joint_pos")
    joint_vel = _proxied("_joint_vel")
    joint_acc = _proxied("_joint_acc")
    root_pos_w = _proxied("_root_pos_w")
    root_quat_w = _proxied("_root_quat_w")
    root_com_vel_w = _proxied("_root_com_vel_w")
    root_vel_w = property(lambda self: ProxyArray(self._root_com_vel_w))
    root_lin_vel_w = property(lambda self: ProxyArray(self._root_com_vel_w[:, :3]))
    root_ang_vel_w = property(lambda self: ProxyArray(self._root_com_vel_w[:, 3:]))
    body_pos_w = _proxied("_body_pos_w")
    body_lin_vel_w = _proxied("_body_lin_vel_w")

    @property
    def root_lin_vel_b(self) -> ProxyArray:
        return ProxyArray(quat_apply_inverse(self._root_quat_w, self._root_com_vel_w[:, :3]))

    @property
    def root_ang_vel_b(self) -> ProxyArray:
        return ProxyArray(quat_apply_inverse(self._root_quat_w, self._root_com_vel_w[:, 3:]))

    @property
    def projected_gravity_b(self) -> ProxyArray:
        return ProxyArray(quat_apply_inverse(self._root_quat_w, self._gravity_vec_w))

    @property
    def root_link_pose_w(self) -> ProxyArray:
        return ProxyArray(torch.cat((self._root_pos_w, self._root_quat_w), dim=-1))


class FakeActuatorCollection:
    """actuators/actuator_collection.py: Articulation.actuators; applied_effort (N, J) after clipping,
    computed_effort before (3.0's home of the deprecated ArticulationData.applied_torque)."""

    def __init__(self, n: int, j: int, device="cpu"):
        self._applied_effort = torch.zeros(n, j, device=device)
        self._computed_effort = torch.zeros(n, j, device=device)

    applied_effort = property(lambda self: ProxyArray(self._applied_effort))
    computed_effort = property(lambda self: ProxyArray(self._computed_effort))


class FakeRootView:
    """The materials of Articulation.root_view that randomize_rigid_body_material writes (3.0 dispatches
    the term per physics backend; this keeps the PhysX tensor API's shape): per-shape materials
    (N, S, 3: static friction, dynamic friction, restitution; toy: one shape per body, 0.5 / 0.5 / 0
    before DR). The setter writes only the rows in `indices`, of a full (N, ...) buffer."""

    def __init__(self, n: int, shapes: int):
        self.max_shapes = shapes
        self._materials = torch.tensor([0.5, 0.5, 0.0]).repeat(n, shapes, 1)

    def get_material_properties(self) -> torch.Tensor:
        return self._materials.clone()

    def set_material_properties(self, materials: torch.Tensor, indices: torch.Tensor) -> None:
        self._materials[indices] = materials[indices]


def _rows_cols(env_ids, col_ids):
    envs = slice(None) if env_ids is None else env_ids
    cols = slice(None) if col_ids is None else col_ids
    if not isinstance(envs, slice) and not isinstance(cols, slice):
        envs = torch.as_tensor(envs)[:, None]
    return envs, cols


class FakeWrenchComposer:
    """Articulation.permanent_wrench_composer: body-frame forces/torques kept until changed (N, B, 3)."""

    def __init__(self, n: int, b: int, device="cpu"):
        self.forces = torch.zeros(n, b, 3, device=device)
        self.torques = torch.zeros(n, b, 3, device=device)

    def set_forces_and_torques_index(self, forces=None, torques=None, positions=None, body_ids=None, env_ids=None,
                                     is_global: bool = False):
        envs, bodies = _rows_cols(env_ids, body_ids)
        if forces is not None:
            self.forces[envs, bodies] = forces
        if torques is not None:
            self.torques[envs, bodies] = torques


class FakeArticulation:
    """Mirrors 3.0's Articulation: names, find_joints / find_bodies, the write_*_to_sim_index setters
    the events and the driver use (keyword-only data, env_ids; root pose x y z + quaternion x y z w,
    root velocity of the com in the WORLD frame, joint position / velocity), set_masses_index,
    `actuators`, root_view."""

    def __init__(self, n: int, joint_names=ISAAC_JOINT_ORDER, body_names=GO2_BODY_NAMES, device="cpu"):
        self.data = FakeArticulationData(n, joint_names, body_names, device)
        self.actuators = FakeActuatorCollection(n, len(joint_names), device)
        self.root_view = FakeRootView(n, len(body_names))
        self.permanent_wrench_composer = FakeWrenchComposer(n, len(body_names), device)
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

    @property
    def num_bodies(self) -> int:
        return len(self.data.body_names)

    def find_bodies(self, name_keys, preserve_order: bool = False):
        return resolve_matching_names(name_keys, self.body_names, preserve_order)

    def find_joints(self, name_keys, joint_subset=None, preserve_order: bool = False):
        return resolve_matching_names(name_keys, joint_subset or self.joint_names, preserve_order)

    def write_root_pose_to_sim_index(self, *, root_pose: torch.Tensor, env_ids=None, skip_forward: bool = False):
        ids = slice(None) if env_ids is None else env_ids
        self.data._root_pos_w[ids] = root_pose[:, :3]
        self.data._root_quat_w[ids] = root_pose[:, 3:7]

    def write_root_velocity_to_sim_index(self, *, root_velocity: torch.Tensor, env_ids=None, skip_forward: bool = False):
        """[lin, ang] of the centre of mass in the world frame, (len(env_ids), 6)."""
        self.write_root_com_velocity_to_sim_index(root_velocity=root_velocity, env_ids=env_ids)

    def write_root_com_velocity_to_sim_index(self, *, root_velocity: torch.Tensor, env_ids=None,
                                             skip_forward: bool = False):
        ids = slice(None) if env_ids is None else env_ids
        self.data._root_com_vel_w[ids] = root_velocity.clone()

    def write_joint_position_to_sim_index(self, *, position, joint_ids=None, env_ids=None, skip_forward: bool = False):
        envs, joints = _rows_cols(env_ids, joint_ids)
        self.data._joint_pos[envs, joints] = position
        self.data._joint_acc[envs, joints] = 0.0     # as the real setter: no stale acceleration

    def write_joint_velocity_to_sim_index(self, *, velocity, joint_ids=None, env_ids=None, skip_forward: bool = False):
        envs, joints = _rows_cols(env_ids, joint_ids)
        self.data._joint_vel[envs, joints] = velocity
        self.data._joint_acc[envs, joints] = 0.0

    def set_masses_index(self, *, masses: torch.Tensor, body_ids=None, env_ids=None) -> None:
        """masses (len(env_ids), len(body_ids)): partial data, as the real index setter."""
        envs, bodies = _rows_cols(env_ids, body_ids)
        self.data._body_mass[envs, bodies] = masses


# --- sensors/contact_sensor/contact_sensor_data.py, contact_sensor.py (isaaclab_newton's) --


class FakeContactSensorData:
    """ProxyArrays: net_normal_forces_w (N, B, 3); net_normal_forces_w_history (N, T, B, 3), newest
    first; net_forces_w / net_forces_w_history, their 3.x aliases; air/contact times (N, B)."""

    def __init__(self, n: int, b: int, history: int, device="cpu"):
        z = lambda *s: torch.zeros(*s, device=device)  # noqa: E731
        self._net_normal_forces_w = z(n, b, 3)
        self._net_normal_forces_w_history = z(n, history, b, 3)
        self._current_air_time = z(n, b)
        self._last_air_time = z(n, b)
        self._current_contact_time = z(n, b)
        self._last_contact_time = z(n, b)

    net_normal_forces_w = property(lambda self: ProxyArray(self._net_normal_forces_w))
    net_normal_forces_w_history = property(lambda self: ProxyArray(self._net_normal_forces_w_history))
    net_forces_w = net_normal_forces_w
    net_forces_w_history = net_normal_forces_w_history
    current_air_time = property(lambda self: ProxyArray(self._current_air_time))
    last_air_time = property(lambda self: ProxyArray(self._last_air_time))
    current_contact_time = property(lambda self: ProxyArray(self._current_contact_time))
    last_contact_time = property(lambda self: ProxyArray(self._last_contact_time))


class FakeContactSensor:
    """A ContactSensor on "{ENV_REGEX_NS}/Robot/.*" (history_length 3, track_air_time, threshold 1 N).
    3.0 names its bodies sensors: sensor_names / find_sensors (body_names / find_bodies are deprecated
    aliases there)."""

    def __init__(self, n: int, body_names=GO2_BODY_NAMES, history_length: int = 3, device="cpu"):
        self.cfg = SimpleNamespace(history_length=history_length, track_air_time=True, force_threshold=1.0)
        self.sensor_names = list(body_names)
        self.num_sensors = len(body_names)
        self.data = FakeContactSensorData(n, self.num_sensors, history_length, device)

    def find_sensors(self, name_keys, preserve_order: bool = False):
        return resolve_matching_names(name_keys, self.sensor_names, preserve_order)

    def compute_first_contact(self, dt: float, abs_tol: float | None = None) -> ProxyArray:
        t = self.data._current_contact_time
        return ProxyArray((t > 0.0) * (t < dt + (1.0e-8 if abs_tol is None else abs_tol)))

    def update(self, dt: float, forces: torch.Tensor) -> None:
        """One sensor update (every physics step): history shift and air/contact time bookkeeping."""
        d = self.data
        d._net_normal_forces_w[:] = forces
        d._net_normal_forces_w_history[:] = d._net_normal_forces_w_history.roll(1, dims=1)
        d._net_normal_forces_w_history[:, 0] = forces
        touching = forces.norm(dim=-1) > self.cfg.force_threshold
        landed = (d._current_air_time > 0) & touching
        lifted = (d._current_contact_time > 0) & ~touching
        d._last_air_time[:] = torch.where(landed, d._current_air_time + dt, d._last_air_time)
        d._current_air_time[:] = torch.where(touching, 0.0, d._current_air_time + dt)
        d._last_contact_time[:] = torch.where(lifted, d._current_contact_time + dt, d._last_contact_time)
        d._current_contact_time[:] = torch.where(touching, d._current_contact_time + dt, 0.0)

    def reset(self, env_ids) -> None:
        d = self.data
        for t in (d._net_normal_forces_w, d._net_normal_forces_w_history, d._current_air_time, d._last_air_time,
                  d._current_contact_time, d._last_contact_time):
            t[env_ids] = 0.0


# --- sensors/ray_caster/ray_caster_data.py -----------------------------------------------


class FakeRayCaster:
    """The Go2 height scanner: yaw-aligned 1.6 m x 1.0 m grid, 0.1 m, under the base. data.ray_hits_w (N, R, 3),
    a ProxyArray as in 3.0's RayCasterData."""

    def __init__(self, n: int, ground: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], device="cpu"):
        xs = torch.linspace(-0.8, 0.8, 17, device=device)
        ys = torch.linspace(-0.5, 0.5, 11, device=device)
        gx, gy = torch.meshgrid(xs, ys, indexing="ij")
        self._grid = torch.stack((gx.flatten(), gy.flatten()), dim=-1)  # (R, 2)
        self.ground = ground
        self.data = SimpleNamespace(pos_w=ProxyArray(torch.zeros(n, 3, device=device)), quat_w=None,
                                    ray_hits_w=ProxyArray(torch.zeros(n, self._grid.shape[0], 3, device=device)))

    def update(self, base_pos_w: torch.Tensor, yaw: torch.Tensor) -> None:
        c, s = torch.cos(yaw)[:, None], torch.sin(yaw)[:, None]
        gx, gy = self._grid[:, 0][None], self._grid[:, 1][None]
        x = base_pos_w[:, :1] + c * gx - s * gy
        y = base_pos_w[:, 1:2] + s * gx + c * gy
        self.data.pos_w.torch[:] = base_pos_w
        self.data.ray_hits_w.torch[:] = torch.stack((x, y, self.ground(x, y)), dim=-1)


# --- envs/mdp/commands/velocity_command.py, managers/command_manager.py --------------------


class FakeUniformVelocityCommand:
    """UniformVelocityCommand: vel_command_b (N, 3) body-frame command, is_standing_env, metrics.

    Metric semantics of 3.0's class (_update_metrics / reset): every step adds
    ||cmd_xy - root_lin_vel_b_xy|| to a per-env sum and counts the step; at an env's reset the
    episode mean (sum / steps) becomes metrics["error_vel_xy"], its mean over the resetting envs is
    logged as Metrics/base_velocity/error_vel_xy, and the sums restart.
    """

    def __init__(self, cfg, robot: FakeArticulation, n: int, step_dt: float, device="cpu"):
        self.cfg = cfg
        self.robot = robot
        self.step_dt = step_dt
        self.vel_command_b = torch.zeros(n, 3, device=device)
        self.is_standing_env = torch.zeros(n, dtype=torch.bool, device=device)
        self.time_left = torch.zeros(n, device=device)
        self.metrics = {"error_vel_xy": torch.zeros(n, device=device), "error_vel_yaw": torch.zeros(n, device=device)}
        self._error_xy_sum = torch.zeros(n, device=device)
        self._error_yaw_sum = torch.zeros(n, device=device)
        self._step_count = torch.zeros(n, device=device)

    @property
    def command(self) -> torch.Tensor:
        return self.vel_command_b

    def compute(self, dt: float) -> None:
        d = self.robot.data
        self._error_xy_sum += (self.vel_command_b[:, :2] - d.root_lin_vel_b.torch[:, :2]).norm(dim=-1)
        self._error_yaw_sum += (self.vel_command_b[:, 2] - d.root_ang_vel_b.torch[:, 2]).abs()
        self._step_count += 1.0
        self.time_left -= dt
        due = (self.time_left <= 0.0).nonzero().flatten()
        if len(due):
            self._resample(due)
        self.vel_command_b[self.is_standing_env] = 0.0

    def reset(self, env_ids) -> dict:
        denom = self._step_count[env_ids].clamp_min(1.0)
        self.metrics["error_vel_xy"][env_ids] = self._error_xy_sum[env_ids] / denom
        self.metrics["error_vel_yaw"][env_ids] = self._error_yaw_sum[env_ids] / denom
        out = {}
        for k, v in self.metrics.items():
            out[k] = float(v[env_ids].mean())
            v[env_ids] = 0.0
        for t in (self._error_xy_sum, self._error_yaw_sum, self._step_count):
            t[env_ids] = 0.0
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


# --- envs/mdp/events.py: the event terms of the Go2 velocity task ---------------------------


_AXES = ("x", "y", "z", "roll", "pitch", "yaw")


def _sample_axes(ranges: dict, n: int, device) -> torch.Tensor:
    """(n, 6) samples over x y z roll pitch yaw; an axis missing from `ranges` is (0, 0)."""
    bounds = torch.tensor([ranges.get(k, (0.0, 0.0)) for k in _AXES], device=device)
    return sample_uniform(bounds[:, 0], bounds[:, 1], (n, 6), device)


def _all_envs(env, env_ids) -> torch.Tensor:
    return torch.arange(env.scene.num_envs) if env_ids is None else torch.as_tensor(env_ids).cpu()


class ManagerTermBase:
    """managers/manager_base.py: a class term is built once as func(cfg=term_cfg, env=env) by its
    manager, then called like a function; reset(env_ids) runs at the envs' resets."""

    def __init__(self, cfg, env):
        self.cfg = cfg
        self._env = env

    def reset(self, env_ids=None) -> None:
        pass


class randomize_rigid_body_material(ManagerTermBase):  # noqa: N801 (Isaac Lab's name)
    """num_buckets materials are sampled once when the term is built; each call gives every shape
    of the chosen bodies of the chosen envs a random bucket (make_consistent: dynamic <= static)."""

    def __init__(self, cfg, env):
        super().__init__(cfg, env)
        self.asset_cfg = cfg.params["asset_cfg"]
        self.asset = env.scene[self.asset_cfg.name]
        p = cfg.params
        ranges = torch.tensor([p.get("static_friction_range", (1.0, 1.0)), p.get("dynamic_friction_range", (1.0, 1.0)),
                               p.get("restitution_range", (0.0, 0.0))])
        self.material_buckets = sample_uniform(ranges[:, 0], ranges[:, 1], (int(p.get("num_buckets", 1)), 3))
        if p.get("make_consistent", False):
            self.material_buckets[:, 1] = torch.minimum(self.material_buckets[:, 0], self.material_buckets[:, 1])

    def __call__(self, env, env_ids, static_friction_range, dynamic_friction_range, restitution_range, num_buckets,
                 asset_cfg, make_consistent=False):
        env_ids = _all_envs(env, env_ids)
        view = self.asset.root_view
        samples = self.material_buckets[torch.randint(0, num_buckets, (len(env_ids), view.max_shapes))]
        materials = view.get_material_properties()
        shapes = self.asset_cfg.body_ids          # toy: shape k belongs to body k
        if isinstance(shapes, slice):
            materials[env_ids] = samples
        else:
            materials[env_ids[:, None], shapes] = samples[:, shapes]
        view.set_material_properties(materials, env_ids)


class randomize_rigid_body_mass(ManagerTermBase):  # noqa: N801 (Isaac Lab's name)
    """Masses of the chosen bodies = the masses at the first call (op) a sample, so repeated calls do
    not drift; written with set_masses_index. Distributions "uniform" and "log_uniform" (3.0's Go2
    default: x 0.8-1.25 log-uniform)."""

    def __init__(self, cfg, env):
        super().__init__(cfg, env)
        self.asset_cfg = cfg.params["asset_cfg"]
        self.asset = env.scene[self.asset_cfg.name]
        if cfg.params["operation"] not in ("add", "scale", "abs"):
            raise ValueError("Randomization term 'randomize_rigid_body_mass' does not support operation:"
                             f" '{cfg.params['operation']}'.")
        self.default_mass = None

    def __call__(self, env, env_ids, asset_cfg, mass_distribution_params, operation, distribution="uniform",
                 recompute_inertia=True, min_mass=1e-6):
        if self.default_mass is None:
            self.default_mass = self.asset.data.body_mass.torch.clone()
        env_ids = _all_envs(env, env_ids)
        ids = self.asset_cfg.body_ids
        rows = env_ids[:, None]
        cols = torch.arange(self.asset.num_bodies) if isinstance(ids, slice) else torch.tensor(ids)
        default = self.default_mass[rows, cols]
        lo, hi = mass_distribution_params
        if distribution == "uniform":
            sample = sample_uniform(lo, hi, default.shape)
        elif distribution == "log_uniform":
            sample = torch.exp(sample_uniform(math.log(lo), math.log(hi), default.shape))
        else:
            raise NotImplementedError(f"the fake samples 'uniform' and 'log_uniform' only, not {distribution!r}")
        masses = {"add": default + sample, "scale": default * sample, "abs": sample}[operation]
        self.asset.set_masses_index(masses=masses.clamp(min=min_mass), body_ids=cols, env_ids=env_ids)
        # (the real term also rescales inertias; the toy physics has none)


def apply_external_force_torque(env, env_ids, force_range, torque_range, asset_cfg=SceneEntityCfg("robot")):
    asset = env.scene[asset_cfg.name]
    if env_ids is None:
        env_ids = torch.arange(env.scene.num_envs, device=asset.device)
    bodies = len(asset_cfg.body_ids) if isinstance(asset_cfg.body_ids, list) else asset.num_bodies
    size = (len(env_ids), bodies, 3)
    forces = sample_uniform(*force_range, size, asset.device)
    torques = sample_uniform(*torque_range, size, asset.device)
    asset.permanent_wrench_composer.set_forces_and_torques_index(forces=forces, torques=torques,
                                                                 body_ids=asset_cfg.body_ids, env_ids=env_ids)


def reset_root_state_uniform(env, env_ids, pose_range, velocity_range, asset_cfg=SceneEntityCfg("robot")):
    """Pose: default root pose + env origin + sampled offset, orientation turned by the sampled
    roll/pitch/yaw (x y z w); velocity: default + sampled, written as the world-frame com velocity."""
    asset = env.scene[asset_cfg.name]
    root_pose = asset.data.default_root_pose.torch[env_ids]
    root_vel = asset.data.default_root_vel.torch[env_ids]
    pose = _sample_axes(pose_range, root_pose.shape[0], asset.device)
    pos = root_pose[:, :3] + env.scene.env_origins[env_ids] + pose[:, :3]
    quat = quat_mul(root_pose[:, 3:7], quat_from_euler_xyz(pose[:, 3], pose[:, 4], pose[:, 5]))
    vel = root_vel + _sample_axes(velocity_range, root_pose.shape[0], asset.device)
    asset.write_root_pose_to_sim_index(root_pose=torch.cat((pos, quat), dim=-1), env_ids=env_ids)
    asset.write_root_velocity_to_sim_index(root_velocity=vel, env_ids=env_ids)


def reset_joints_by_scale(env, env_ids, position_range, velocity_range, asset_cfg=SceneEntityCfg("robot")):
    """Default joint position / velocity times a sampled scale (the fake has no joint limits to clamp to)."""
    asset = env.scene[asset_cfg.name]
    rows = env_ids if isinstance(asset_cfg.joint_ids, slice) else env_ids[:, None]
    pos = asset.data.default_joint_pos.torch[rows, asset_cfg.joint_ids].clone()
    vel = asset.data.default_joint_vel.torch[rows, asset_cfg.joint_ids].clone()
    pos *= sample_uniform(*position_range, pos.shape, pos.device)
    vel *= sample_uniform(*velocity_range, vel.shape, vel.device)
    asset.write_joint_position_to_sim_index(position=pos, joint_ids=asset_cfg.joint_ids, env_ids=env_ids)
    asset.write_joint_velocity_to_sim_index(velocity=vel, joint_ids=asset_cfg.joint_ids, env_ids=env_ids)


def push_by_setting_velocity(env, env_ids, velocity_range, asset_cfg=SceneEntityCfg("robot")):
    """A push: the sampled [x y z roll pitch yaw] velocity is added to the WORLD-frame root (com)
    velocity and written back, so a yawed robot feels it turned in its base frame."""
    asset = env.scene[asset_cfg.name]
    vel_w = asset.data.root_vel_w.torch[env_ids]        # a copy (indexed by a tensor)
    vel_w += _sample_axes(velocity_range, vel_w.shape[0], asset.device)
    asset.write_root_velocity_to_sim_index(root_velocity=vel_w, env_ids=env_ids)


# --- managers/event_manager.py ---------------------------------------------------------------


class FakeEventManager:
    """Event terms grouped by mode, each called as func(env, env_ids, **params). The env applies
    "startup" once when it is made, "reset" on the envs it resets, and "interval" after every step:
    each interval term has a timer per env (one shared timer if is_global_time) that counts down by
    step_dt, fires below 1e-6 s and is resampled from interval_range_s, and, per env, at that env's
    reset. Preparing a term resolves its SceneEntityCfg params and builds class terms (func(cfg, env))."""

    def __init__(self, cfg, env):
        self._env = env
        self._mode_term_names: dict[str, list[str]] = {}
        self._mode_term_cfgs: dict[str, list[EventTermCfg]] = {}
        self._interval_term_time_left: list[torch.Tensor] = []
        for name, term in vars(cfg).items():
            if term is None:
                continue
            if not isinstance(term, EventTermCfg):
                raise TypeError(f"Configuration for the term '{name}' is not of type EventTermCfg."
                                f" Received: '{type(term)}'.")
            for value in term.params.values():
                if isinstance(value, SceneEntityCfg):
                    value.resolve(env.scene)
            if inspect.isclass(term.func):
                term.func = term.func(cfg=term, env=env)
            self._mode_term_names.setdefault(term.mode, []).append(name)
            self._mode_term_cfgs.setdefault(term.mode, []).append(term)
            if term.mode == "interval":
                if term.interval_range_s is None:
                    raise ValueError(f"Event term '{name}' has mode 'interval' but 'interval_range_s'"
                                     " is not specified.")
                timers = 1 if term.is_global_time else env.num_envs
                self._interval_term_time_left.append(self._sample_interval(term, timers))
            elif term.mode == "reset" and term.min_step_count_between_reset != 0:
                raise NotImplementedError("the fake applies reset events on every reset only")

    @property
    def active_terms(self) -> dict[str, list[str]]:
        return self._mode_term_names

    @property
    def available_modes(self) -> list[str]:
        return list(self._mode_term_names)

    def get_term_cfg(self, name: str) -> EventTermCfg:
        for mode, names in self._mode_term_names.items():
            if name in names:
                return self._mode_term_cfgs[mode][names.index(name)]
        raise ValueError(f"Event term '{name}' not found.")

    def _sample_interval(self, term, n: int) -> torch.Tensor:
        lower, upper = term.interval_range_s
        return torch.rand(n, device=self._env.device) * (upper - lower) + lower

    def apply(self, mode: str, env_ids=None, dt: float | None = None, global_env_step_count: int | None = None):
        if mode not in self._mode_term_names:
            return                                     # the real one logs a warning
        if mode == "interval" and (dt is None or env_ids is not None):
            raise ValueError("Event mode 'interval' needs dt and picks its own env ids.")
        if mode == "reset" and global_env_step_count is None:
            raise ValueError("Event mode 'reset' requires the total number of environment steps to be provided.")
        for index, term in enumerate(self._mode_term_cfgs[mode]):
            if mode == "interval":
                time_left = self._interval_term_time_left[index]
                time_left -= dt
                if term.is_global_time:
                    if time_left < 1e-6:
                        time_left[:] = self._sample_interval(term, 1)
                        term.func(self._env, None, **term.params)
                else:
                    due = (time_left < 1e-6).nonzero().flatten()
                    if len(due):
                        time_left[due] = self._sample_interval(term, len(due))
                        term.func(self._env, due, **term.params)
            elif mode == "reset":
                term.func(self._env, slice(None) if env_ids is None else env_ids, **term.params)
            else:
                term.func(self._env, env_ids, **term.params)

    def reset(self, env_ids=None) -> dict:
        for terms in self._mode_term_cfgs.values():
            for term in terms:
                if isinstance(term.func, ManagerTermBase):
                    term.func.reset(env_ids=env_ids)
        ids = slice(None) if env_ids is None else env_ids
        n = self._env.num_envs if env_ids is None else len(env_ids)
        for index, term in enumerate(self._mode_term_cfgs.get("interval", [])):
            if not term.is_global_time:                # a new episode restarts its envs' push timers
                self._interval_term_time_left[index][ids] = self._sample_interval(term, n)
        return {}


# --- cfg objects (isaaclab_tasks/core/velocity/velocity_env_cfg.py and
#     .../config/go2/rough_env_cfg.py, flat_env_cfg.py), names and values as there ------------


def fake_terms():
    from harness.isaaclab.task_config import IsaacTerms

    return IsaacTerms(RewardTermCfg, TerminationTermCfg, EventTermCfg, push_by_setting_velocity)


def _time_out(env) -> torch.Tensor:               # envs/mdp/terminations.py: time_out
    return env.episode_length_buf >= env.max_episode_length


def _illegal_contact(env, threshold: float, sensor_cfg) -> torch.Tensor:   # terminations.py: illegal_contact
    sensor = env.scene.sensors[sensor_cfg.name]
    ids, _ = sensor.find_sensors(sensor_cfg.body_names)
    peak = sensor.data.net_normal_forces_w_history.torch[:, :, ids].norm(dim=-1).amax(dim=1)
    return (peak > threshold).any(dim=1)


def _unsupported_event(env, env_ids, **params):
    """Stands for an event term the fake does not simulate (randomize_rigid_body_com); the harness removes it."""
    raise NotImplementedError("the fake does not simulate this event term; the harness's cfg edit removes it")


def _zero_reward(env, **kwargs) -> torch.Tensor:
    return torch.zeros(env.num_envs)


class UnitreeGo2RoughEnvCfg(SimpleNamespace):
    pass


class UnitreeGo2FlatEnvCfg(SimpleNamespace):
    pass


def make_go2_cfg(terrain: str = "rough") -> SimpleNamespace:
    """The registry's UnitreeGo2RoughEnvCfg / UnitreeGo2FlatEnvCfg (3.0) after __post_init__ (the parts we edit)."""
    S = SimpleNamespace
    sub_terrains = {k: S(proportion=p) for k, p in (
        ("pyramid_stairs", 0.2), ("pyramid_stairs_inv", 0.2), ("boxes", 0.2),
        ("random_rough", 0.2), ("hf_pyramid_slope", 0.1), ("hf_pyramid_slope_inv", 0.1))}
    rough = terrain == "rough"
    generator = S(sub_terrains=sub_terrains, num_rows=10, num_cols=20, curriculum=True, seed=None) if rough else None
    rew = lambda w, **p: RewardTermCfg(func=_zero_reward, weight=w, params=p)  # noqa: E731
    return (UnitreeGo2RoughEnvCfg if rough else UnitreeGo2FlatEnvCfg)(
        seed=None,
        decimation=4,
        episode_length_s=20.0,
        sim=S(dt=0.005, device="cuda:0", render_interval=4, use_newton_actuators=True),
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
            physics_material=EventTermCfg(func=randomize_rigid_body_material, mode="startup", params={
                "asset_cfg": SceneEntityCfg("robot", body_names=".*"),
                "static_friction_range": (0.8, 0.8), "dynamic_friction_range": (0.6, 0.6),
                "restitution_range": (0.0, 0.0), "num_buckets": 64}),
            add_base_mass=EventTermCfg(func=randomize_rigid_body_mass, mode="startup", params={
                "asset_cfg": SceneEntityCfg("robot", body_names="base"),
                "mass_distribution_params": (1 / 1.25, 1.25), "operation": "scale", "distribution": "log_uniform"}),
            base_com=EventTermCfg(func=_unsupported_event, mode="startup", params={
                "asset_cfg": SceneEntityCfg("robot", body_names="base"),
                "com_range": {"x": (-0.05, 0.05), "y": (-0.05, 0.05), "z": (-0.01, 0.01)}}),
            base_external_force_torque=EventTermCfg(func=apply_external_force_torque, mode="reset", params={
                "asset_cfg": SceneEntityCfg("robot", body_names="base"), "force_range": (0.0, 0.0),
                "torque_range": (-0.0, 0.0)}),
            reset_base=EventTermCfg(func=reset_root_state_uniform, mode="reset", params={
                "pose_range": {"x": (-0.5, 0.5), "y": (-0.5, 0.5), "yaw": (-3.14, 3.14)},
                "velocity_range": {k: (-0.5, 0.5) for k in _AXES}}),
            reset_robot_joints=EventTermCfg(func=reset_joints_by_scale, mode="reset", params={
                "position_range": (0.5, 1.5), "velocity_range": (0.0, 0.0)}),
            push_robot=EventTermCfg(func=push_by_setting_velocity, mode="interval", interval_range_s=(10.0, 15.0),
                                    params={"velocity_range": {"x": (-0.5, 0.5), "y": (-0.5, 0.5)}}),
        ),
        rewards=S(
            track_lin_vel_xy_exp=rew(1.5), track_ang_vel_z_exp=rew(0.75), lin_vel_z_l2=rew(-2.0),
            ang_vel_xy_l2=rew(-0.05), dof_torques_l2=rew(-0.0002), dof_acc_l2=rew(-2.5e-7),
            action_rate_l2=rew(-0.005), feet_air_time=rew(0.01 if rough else 0.25), undesired_contacts=None,
            flat_orientation_l2=rew(-2.5 if not rough else 0.0), dof_pos_limits=rew(0.0),
            base_height_l2=rew(-30.0, target_height=0.4),
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
        self.num_envs = robot.num_instances

    def reset(self, env_ids) -> None:
        """InteractiveScene.reset: buffers only; the robot's state is reset by the reset events."""
        for sensor in self.sensors.values():
            if hasattr(sensor, "reset"):
                sensor.reset(env_ids)

    def __getitem__(self, key):
        return self._entities[key] if key in self._entities else self.sensors[key]

    @property
    def env_origins(self) -> torch.Tensor:
        return self.terrain.env_origins


class FakeManagerBasedRLEnv:
    """ManagerBasedEnv.__init__ validates the cfg (MISSING values raise TypeError), builds the
    scene and the event manager, then the other managers, then applies the "startup" events.
    ManagerBasedRLEnv.step() order: process actions; `decimation` x (apply, physics, sensor
    update); episode_length_buf += 1; terminations; rewards (each non-None cfg term, weight != 0);
    reset of done envs (scene, "reset" events, managers -> extras["log"]); command compute;
    "interval" events; obs. reset() resets every env the same way.

    Test controls: base_contact_at {step: [env ids]} and nan_at {step: [env ids]} keyed by
    common_step_counter (1 = first step); `ground(x, y)` gives terrain height (rough scenes).
    """

    def __init__(self, cfg, device="cpu", seed: int = 0):
        validate_cfg(cfg)
        torch.manual_seed(seed)
        self.cfg = cfg
        self.device = device
        self.num_envs = n = cfg.scene.num_envs
        self.physics_dt = cfg.sim.dt
        self.step_dt = cfg.sim.dt * cfg.decimation
        self.max_episode_length = math.ceil(cfg.episode_length_s / self.step_dt)
        self.episode_length_buf = torch.zeros(n, dtype=torch.long, device=device)
        self.common_step_counter = 0
        self._sim_step_counter = 0
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
        self.event_manager = FakeEventManager(cfg.events, self)
        cmd = FakeUniformVelocityCommand(cfg.commands.base_velocity, robot, n, self.step_dt, device)
        self.command_manager = FakeCommandManager({"base_velocity": cmd})
        self._phase = torch.rand(n, device=device) * 2 * math.pi
        self._foot_ids = [GO2_BODY_NAMES.index(f) for f in config.FOOT_NAMES]
        self._leg_phase = torch.tensor([0.0, math.pi, math.pi, 0.0])            # FL+RR, FR+RL
        self._hip_x = torch.tensor([0.19, 0.19, -0.19, -0.19])   # FL FR RL RR
        self._hip_y = torch.tensor([0.14, -0.14, 0.14, -0.14])
        self.log_isaac = []   # (vel_command_b, root_lin_vel_b) at each reward computation
        if "startup" in self.event_manager.available_modes:      # once, after all managers exist
            self.event_manager.apply(mode="startup")

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
        target = data._default_joint_pos + self.cfg.actions.joint_pos.scale * action
        for _ in range(self.cfg.decimation):
            self._sim_step_counter += 1
            self._physics(target)
        self.common_step_counter += 1
        self.episode_length_buf += 1
        for ids in self.nan_at.get(self.common_step_counter, []):
            data._joint_vel[ids] = float("nan")
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
        self.log_isaac.append((cmd.vel_command_b.clone(), data.root_lin_vel_b.torch.clone()))
        reward = torch.zeros(self.num_envs)
        for _, term in self._terms(self.cfg.rewards):
            if term.weight != 0.0:
                reward += term.func(self, **term.params) * term.weight * self.step_dt
        ids = self.reset_buf.nonzero().flatten()
        if len(ids):
            self._reset_idx(ids)
        self.command_manager.compute(self.step_dt)
        if "interval" in self.event_manager.available_modes:
            self.event_manager.apply(mode="interval", dt=self.step_dt)
        return torch.zeros(self.num_envs, 48), reward, self.reset_terminated, self.reset_time_outs, self.extras

    def close(self):
        self.closed = True

    # --- toy physics -------------------------------------------------------------------
    def _physics(self, target: torch.Tensor) -> None:
        dt = self.physics_dt
        robot = self.scene["robot"]
        data = robot.data
        old_pos, old_vel = data._joint_pos.clone(), data._joint_vel.clone()
        robot.actuators._applied_effort[:] = (config.KP * (target - old_pos) - config.KD * old_vel).clamp(
            -config.TORQUE_LIMIT, config.TORQUE_LIMIT)
        data._joint_pos[:] = target                     # perfect position tracking
        data._joint_vel[:] = (target - old_pos) / dt
        data._joint_acc[:] = (data._joint_vel - old_vel) / dt
        cmd = self.command_manager.get_command("base_velocity")
        lean = (target[:, :2] - data._default_joint_pos[:, :2])   # the action moves the base too
        # a first-order lag in the base frame; the solver's state (and a push) is the world-frame velocity
        q = data._root_quat_w
        v_b, w_b = data.root_lin_vel_b.torch, data.root_ang_vel_b.torch
        v_b[:, :2] = 0.95 * v_b[:, :2] + 0.05 * (0.8 * cmd[:, :2] + 0.5 * lean)
        w_b[:, 2] = 0.95 * w_b[:, 2] + 0.05 * cmd[:, 2]
        data._root_com_vel_w[:] = torch.cat((quat_apply(q, v_b), quat_apply(q, w_b)), dim=-1)
        data._root_pos_w[:, :2] += data._root_com_vel_w[:, :2] * dt
        yaw = yaw_of(q)
        c, s = torch.cos(yaw), torch.sin(yaw)
        # trot: diagonal pairs alternate, 2 Hz
        self._phase += 2 * math.pi * 2.0 * dt
        names = data.body_names
        feet = self._foot_ids
        swing = torch.sin(self._phase[:, None] + self._leg_phase)                    # (N, 4)
        x = data._root_pos_w[:, :1] + c[:, None] * self._hip_x - s[:, None] * self._hip_y
        y = data._root_pos_w[:, 1:2] + s[:, None] * self._hip_x + c[:, None] * self._hip_y
        new = torch.stack((x, y, self.ground(x, y) + 0.02 + 0.06 * swing.clamp(min=0.0)), dim=-1)
        data._body_lin_vel_w[:, feet] = (new - data._body_pos_w[:, feet]) / dt
        data._body_pos_w[:, feet] = new
        forces = torch.zeros(self.num_envs, len(names), 3)
        forces[:, feet, 2] = torch.where(swing <= 0.0, 40.0, 0.0)
        ground = self.ground
        base = names.index("base")
        data._root_pos_w[:, 2] = ground(data._root_pos_w[:, 0], data._root_pos_w[:, 1]) + 0.3
        data._body_pos_w[:, base] = data._root_pos_w
        for i in self.base_contact_at.get(self.common_step_counter + 1, []):
            forces[i, base, 2] = 50.0
        self.scene.sensors["contact_forces"].update(dt, forces)
        if "height_scanner" in self.scene.sensors:
            self.scene.sensors["height_scanner"].update(data._root_pos_w, yaw)

    def _reset_idx(self, ids: torch.Tensor) -> None:
        # the robot's pose, velocity and joints come back only through the "reset" events
        self.scene.reset(ids)
        if "reset" in self.event_manager.available_modes:
            self.event_manager.apply(mode="reset", env_ids=ids,
                                     global_env_step_count=self._sim_step_counter // self.cfg.decimation)
        self.extras["log"] = dict(self.command_manager.reset(ids))
        self.extras["log"].update(self.event_manager.reset(ids))
        self.episode_length_buf[ids] = 0
