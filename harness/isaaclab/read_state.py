"""Isaac-shaped data -> our RobotState: joints and bodies resolved by name, then read each step.

Pure torch over objects shaped like Isaac Lab 3.0's Articulation, ContactSensor and RayCaster
(real ones, or the fakes in tests/isaaclab_fakes.py). In 3.0 their data properties are ProxyArrays
over Warp arrays: `.torch` is a zero-copy torch view (quaternions x y z w, unused here).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harness import config
from harness.env_api import BackendError
from harness.state import RobotState

BASE_BODY = "base"
THIGH_BODIES = tuple(f"{leg}_thigh" for leg in config.LEGS)
FOOT_BODIES = config.FOOT_NAMES



@dataclass(frozen=True)
class JointMap:
    """Our joint order (config.JOINT_NAMES, leg-major) <-> the articulation's order, by name."""

    isaac_index: torch.Tensor   # (12,) long: Isaac position of each of our joints
    our_index: torch.Tensor     # (12,) long: our position of each Isaac joint

    def to_ours(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., self.isaac_index]

    def to_isaac(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., self.our_index]

    def to(self, device) -> "JointMap":
        return JointMap(self.isaac_index.to(device), self.our_index.to(device))


def resolve_joint_map(isaac_joint_names) -> JointMap:
    """Map by name; fails loudly if the articulation's joints are not exactly our 12."""
    names = list(isaac_joint_names)
    if sorted(names) != sorted(config.JOINT_NAMES) or len(set(names)) != len(names):
        raise BackendError(
            f"the Isaac Lab robot's joints {names} are not the expected Go2 joints {list(config.JOINT_NAMES)}"
        )
    isaac_index = torch.tensor([names.index(n) for n in config.JOINT_NAMES], dtype=torch.long)
    our_index = torch.tensor([config.JOINT_NAMES.index(n) for n in names], dtype=torch.long)
    return JointMap(isaac_index, our_index)


@dataclass(frozen=True)
class BodyIndex:
    foot_bodies: torch.Tensor    # (4,) articulation body ids of FL, FR, RL, RR feet
    foot_sensor: torch.Tensor    # (4,) contact-sensor body ids of the feet
    thigh_sensor: torch.Tensor   # (4,) contact-sensor body ids of the thighs
    base_sensor: torch.Tensor    # (1,) contact-sensor body id of the trunk

    def to(self, device) -> "BodyIndex":
        return BodyIndex(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))


def _find(owner, names: tuple[str, ...], what: str) -> torch.Tensor:
    """Ids of `names` in the order given, via Isaac Lab's find_bodies (an Articulation) or
    find_sensors (a ContactSensor, 3.0's name; find_bodies is deprecated there). Names are exact regexes."""
    find = getattr(owner, "find_sensors", None) or owner.find_bodies
    try:
        ids, found = find(list(names), preserve_order=True)
    except ValueError as e:
        raise BackendError(f"the {what} lacks bodies {list(names)}: {e}") from e
    if list(found) != list(names):
        raise BackendError(f"the {what} resolved {list(found)} for bodies {list(names)}")
    return torch.tensor(list(ids), dtype=torch.long)


def resolve_bodies(robot, contact) -> BodyIndex:
    return BodyIndex(
        foot_bodies=_find(robot, FOOT_BODIES, "robot articulation"),
        foot_sensor=_find(contact, FOOT_BODIES, "contact sensor"),
        thigh_sensor=_find(contact, THIGH_BODIES, "contact sensor"),
        base_sensor=_find(contact, (BASE_BODY,), "contact sensor"),
    )


def ground_height(points_w: torch.Tensor, ray_hits_w: torch.Tensor | None) -> torch.Tensor:
    """Terrain height under each point: the z of the nearest (in xy) height-scan hit.

    points_w (N, P, 3); ray_hits_w (N, R, 3) from the yaw-aligned 1.6 m x 1.0 m grid under the
    base (0.1 m spacing), or None on flat ground (the plane is at z = 0). Misses (inf) are ignored.
    """
    if ray_hits_w is None:
        return torch.zeros(points_w.shape[:-1], device=points_w.device, dtype=points_w.dtype)
    hits = ray_hits_w
    ok = torch.isfinite(hits).all(dim=-1)                                   # (N, R)
    d2 = (points_w[:, :, None, :2] - torch.where(ok[..., None], hits, 0.0)[:, None, :, :2]).square().sum(-1)
    d2 = torch.where(ok[:, None, :], d2, torch.inf)                         # (N, P, R)
    nearest = d2.argmin(dim=-1)                                             # (N, P)
    z = torch.gather(torch.where(ok, hits[..., 2], 0.0), 1, nearest)
    return torch.where(torch.isfinite(d2.min(dim=-1).values), z, 0.0)


def _t(x) -> torch.Tensor:
    """The torch view of an Isaac Lab 3.0 data property (a ProxyArray)."""
    return x.torch


def read_robot_state(
    robot,
    contact,
    joints: JointMap,
    bodies: BodyIndex,
    *,
    commands: torch.Tensor,
    actions: torch.Tensor,
    last_actions: torch.Tensor,
    episode_step: torch.Tensor,
    terrain_level: torch.Tensor,
    step_dt: float,
    ray_hits_w: torch.Tensor | None = None,
    threshold: float = config.CONTACT_FORCE_THRESHOLD,
) -> RobotState:
    """Our RobotState from Isaac Lab's ArticulationData / ContactSensorData (all copies).

    Velocities are Isaac's root_lin_vel_b / root_ang_vel_b (centre-of-mass velocity in the base
    frame), the quantities Isaac's own tracking rewards and metrics use. Torques are the actuators'
    applied (clipped) efforts, `robot.actuators.applied_effort` (3.0's home of the deprecated
    ArticulationData.applied_torque). Contact forces are the normal forces (3.0's
    net_normal_forces_w_history; net_forces_w_history is its alias through 3.x). Trunk and thigh
    contacts are the max over the sensor's history (all physics substeps of the step), as Isaac's
    illegal_contact termination and undesired_contacts reward; foot contact is the latest substep,
    as the sensor's air-time bookkeeping.
    """
    d = robot.data
    c = contact.data
    base_pos = _t(d.root_pos_w)
    foot_pos = _t(d.body_pos_w)[:, bodies.foot_bodies]                       # (N, 4, 3)
    ground = ground_height(torch.cat((base_pos[:, None], foot_pos), dim=1), ray_hits_w)
    history = _t(c.net_normal_forces_w_history).norm(dim=-1)                 # (N, T, B)
    latest = history[:, 0]
    peak = history.amax(dim=1)
    foot_force = latest[:, bodies.foot_sensor]
    f = bodies.foot_sensor
    return RobotState(
        base_lin_vel=_t(d.root_lin_vel_b).clone(),
        base_ang_vel=_t(d.root_ang_vel_b).clone(),
        projected_gravity=_t(d.projected_gravity_b).clone(),
        base_height=base_pos[:, 2] - ground[:, 0],
        joint_pos=joints.to_ours(_t(d.joint_pos)),
        default_joint_pos=joints.to_ours(_t(d.default_joint_pos)),
        joint_vel=joints.to_ours(_t(d.joint_vel)),
        joint_acc=joints.to_ours(_t(d.joint_acc)),
        torques=joints.to_ours(_t(robot.actuators.applied_effort)),
        actions=actions.clone(),
        last_actions=last_actions.clone(),
        commands=commands.clone(),
        foot_contact=foot_force > threshold,
        foot_contact_force=foot_force,
        foot_air_time=_t(c.current_air_time)[:, f].clone(),
        foot_last_air_time=_t(c.last_air_time)[:, f].clone(),
        foot_contact_time=_t(c.current_contact_time)[:, f].clone(),
        foot_last_contact_time=_t(c.last_contact_time)[:, f].clone(),
        foot_first_contact=_t(contact.compute_first_contact(step_dt))[:, f].bool(),
        foot_vel=_t(d.body_lin_vel_w)[:, bodies.foot_bodies].clone(),
        foot_height=foot_pos[..., 2] - ground[:, 1:],
        undesired_contact=peak[:, bodies.thigh_sensor] > threshold,
        trunk_contact=(peak[:, bodies.base_sensor] > threshold).any(dim=1),
        episode_step=episode_step.clone().long(),
        terrain_level=terrain_level.clone().long(),
        dt=float(step_dt),
    )


def finite_rows(state: RobotState) -> torch.Tensor:
    """(N,) bool: envs whose float state is all finite (a physics blow-up gives NaN/inf)."""
    ok = torch.ones(state.num_envs, dtype=torch.bool, device=state.base_lin_vel.device)
    for name in ("base_lin_vel", "base_ang_vel", "projected_gravity", "base_height", "joint_pos",
                 "joint_vel", "joint_acc", "torques", "foot_vel", "foot_height"):
        x = getattr(state, name)
        ok &= torch.isfinite(x.reshape(x.shape[0], -1)).all(dim=1)
    return ok
