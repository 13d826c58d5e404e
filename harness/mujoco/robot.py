"""The robot model: load our MJCF, put it on the chosen terrain, compile, look up ids.

The MJCF (harness/mujoco/assets/quadruped.xml) holds the robot, its actuators and sensors, the
look (materials, skybox, light, the "track" camera) and a flat floor plane. For rough
terrain the plane is swapped for one heightfield geom built from harness.mujoco.terrain.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from harness import config
from harness.mujoco.terrain import Terrain

ASSET = Path(__file__).parent / "assets" / "quadruped.xml"
FOOT_RADIUS = 0.022
TRUNK_BODY = "trunk"
THIGH_GEOMS = tuple(f"{leg}_thigh" for leg in config.LEGS)
FOOT_CONTACT_SENSORS = tuple(f"{leg}_foot_contact" for leg in config.LEGS)
THIGH_CONTACT_SENSORS = tuple(f"{leg}_thigh_contact" for leg in config.LEGS)
TRUNK_CONTACT_SENSOR = "trunk_contact"
FOOT_VEL_SENSORS = tuple(f"{leg}_foot_vel" for leg in config.LEGS)


def build_spec(terrain: Terrain, visual: bool = True) -> mujoco.MjSpec:
    spec = mujoco.MjSpec.from_file(str(ASSET))
    if terrain.kind == "rough":
        _use_heightfield(spec, terrain)
    if not visual:
        # render-only geoms are massless and never collide, but every step still computes their
        # poses: the physics model leaves them out (1.4x with the solver settings, see README)
        for geom in [g for g in spec.geoms if g.classname.name == "visual"]:
            spec.delete(geom)
    return spec


def build_model(terrain: Terrain, visual: bool = True) -> mujoco.MjModel:
    """The compiled model: robot + ground of the given terrain; visual=False drops render-only geoms
    (same bodies, joints, masses, contacts and sensors, so states carry over between the two)."""
    model = build_spec(terrain, visual).compile()
    check_model(model)
    return model


def _use_heightfield(spec: mujoco.MjSpec, terrain: Terrain) -> None:
    floor = spec.geom("floor")
    material, friction, solref = floor.material, np.array(floor.friction), np.array(floor.solref)
    spec.delete(floor)
    h = terrain.heights
    lo, hi = float(h.min()), float(h.max())
    span = max(hi - lo, 1e-3)
    nrow, ncol = h.shape
    spec.add_hfield(
        name="terrain",
        size=[terrain.size_x / 2.0, terrain.size_y / 2.0, span, 0.5],
        nrow=nrow,
        ncol=ncol,
        userdata=((h - lo) / span).astype(np.float32).ravel().tolist(),
    )
    spec.worldbody.add_geom(
        name="floor",
        type=mujoco.mjtGeom.mjGEOM_HFIELD,
        hfieldname="terrain",
        pos=[0.0, 0.0, lo],
        material=material,
        friction=friction,
        solref=solref,
        contype=0,
        conaffinity=1,
        condim=3,
    )
    # Below everything, out of sight: a robot that somehow walks off the heightfield lands here
    # (and ends its episode on its trunk) instead of falling forever.
    spec.worldbody.add_geom(
        name="catch_floor",
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        size=[0.0, 0.0, 0.05],
        pos=[0.0, 0.0, lo - 1.0],
        contype=0,
        conaffinity=1,
        group=3,
        rgba=[0.2, 0.2, 0.2, 1.0],
    )


def check_model(model: mujoco.MjModel) -> None:
    """The compiled model's joints and PD actuators are in the documented JOINT_NAMES order."""
    for i, name in enumerate(config.JOINT_NAMES):
        jid = model.joint(name).id
        if model.jnt_qposadr[jid] != 7 + i or model.jnt_dofadr[jid] != 6 + i:
            raise RuntimeError(f"joint {name} is not at qpos {7 + i}; the MJCF must follow JOINT_NAMES order")
        if model.actuator_trnid[i, 0] != jid:
            raise RuntimeError(f"actuator {i} does not drive {name}; actuators must follow JOINT_NAMES order")


@dataclass(frozen=True)
class ModelIndex:
    """Where things live in the compiled model's arrays."""

    trunk_body: int
    foot_geoms: np.ndarray        # (4,) geom ids, FOOT_NAMES order
    foot_sites: np.ndarray        # (4,) site ids
    foot_contact: np.ndarray      # (4,) sensordata address of each foot's [found, fx, fy, fz]
    thigh_contact: np.ndarray     # (4,)
    trunk_contact: int
    foot_vel: np.ndarray          # (4,) sensordata address of each foot's world linear velocity
    joint_lower: np.ndarray       # (12,) rad
    joint_upper: np.ndarray       # (12,) rad


def index(model: mujoco.MjModel) -> ModelIndex:
    def adr(name: str) -> int:
        return int(model.sensor_adr[model.sensor(name).id])

    jids = [model.joint(n).id for n in config.JOINT_NAMES]
    return ModelIndex(
        trunk_body=model.body(TRUNK_BODY).id,
        foot_geoms=np.array([model.geom(n).id for n in config.FOOT_NAMES]),
        foot_sites=np.array([model.site(n).id for n in config.FOOT_NAMES]),
        foot_contact=np.array([adr(n) for n in FOOT_CONTACT_SENSORS]),
        thigh_contact=np.array([adr(n) for n in THIGH_CONTACT_SENSORS]),
        trunk_contact=adr(TRUNK_CONTACT_SENSOR),
        foot_vel=np.array([adr(n) for n in FOOT_VEL_SENSORS]),
        joint_lower=model.jnt_range[jids, 0].copy(),
        joint_upper=model.jnt_range[jids, 1].copy(),
    )


def total_mass(model: mujoco.MjModel) -> float:
    return float(model.body_subtreemass[model.body(TRUNK_BODY).id])
