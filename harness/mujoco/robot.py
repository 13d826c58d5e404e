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
import torch

from harness import config
from harness.mujoco.terrain import Terrain

ASSET = Path(__file__).parent / "assets" / "quadruped.xml"
FOOT_RADIUS = 0.022
TRUNK_BODY = "trunk"
GROUND_GEOMS = ("floor", "catch_floor")  # the catch floor exists on rough terrain only
THIGH_GEOMS = tuple(f"{leg}_thigh" for leg in config.LEGS)
FOOT_CONTACT_SENSORS = tuple(f"{leg}_foot_contact" for leg in config.LEGS)
THIGH_CONTACT_SENSORS = tuple(f"{leg}_thigh_contact" for leg in config.LEGS)
TRUNK_CONTACT_SENSOR = "trunk_contact"


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


def geom_collision_model(terrain: Terrain) -> mujoco.MjModel:
    """The physics model with its contacts found by MuJoCo's broad phase instead of the pairs: the
    ground has conaffinity, the colliders contype, the feet priority (their friction is the
    contact's). It simulates bit for bit as build_model (tests/test_robot.py); the throughput
    benchmark steps it as the baseline the pairs are measured against."""
    spec = build_spec(terrain, visual=False)
    for pair in list(spec.pairs):
        for name in (pair.geomname1, pair.geomname2):
            geom = spec.geom(name)
            geom.contype, geom.conaffinity = (0, 1) if name in GROUND_GEOMS else (1, 0)
            geom.friction, geom.solref, geom.condim = pair.friction[[0, 2, 3]], pair.solref, pair.condim
            geom.priority = 1 if name in config.FOOT_NAMES else 0
        spec.delete(pair)
    return spec.compile()


def _use_heightfield(spec: mujoco.MjSpec, terrain: Terrain) -> None:
    floor = spec.geom("floor")
    material = floor.material
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
        contype=0,
        conaffinity=0,
    )
    # Below everything, out of sight: a robot that somehow walks off the heightfield lands here
    # (and ends its episode on its trunk) instead of falling forever.
    spec.worldbody.add_geom(
        name="catch_floor",
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        size=[0.0, 0.0, 0.05],
        pos=[0.0, 0.0, lo - 1.0],
        contype=0,
        conaffinity=0,
        group=3,
        rgba=[0.2, 0.2, 0.2, 1.0],
    )
    for pair in [p for p in spec.pairs if p.geomname2 == "floor"]:
        spec.add_pair(geomname1=pair.geomname1, geomname2="catch_floor", condim=pair.condim,
                      friction=pair.friction, solref=pair.solref, solimp=pair.solimp)


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
    foot_pairs: np.ndarray        # (grounds, 4) contact-pair ids of each foot against each ground geom
    foot_contact: np.ndarray      # (4,) sensordata address of each foot's [found, fx, fy, fz]
    thigh_contact: np.ndarray     # (4,)
    trunk_contact: int
    joint_lower: np.ndarray       # (12,) rad
    joint_upper: np.ndarray       # (12,) rad


def index(model: mujoco.MjModel) -> ModelIndex:
    def adr(name: str) -> int:
        return int(model.sensor_adr[model.sensor(name).id])

    jids = [model.joint(n).id for n in config.JOINT_NAMES]
    feet = np.array([model.geom(n).id for n in config.FOOT_NAMES])
    grounds = [g for g in (mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, n) for n in GROUND_GEOMS) if g >= 0]
    return ModelIndex(
        trunk_body=model.body(TRUNK_BODY).id,
        foot_pairs=np.array([[_pair(model, f, g) for f in feet] for g in grounds]),
        foot_contact=np.array([adr(n) for n in FOOT_CONTACT_SENSORS]),
        thigh_contact=np.array([adr(n) for n in THIGH_CONTACT_SENSORS]),
        trunk_contact=adr(TRUNK_CONTACT_SENSOR),
        joint_lower=model.jnt_range[jids, 0].copy(),
        joint_upper=model.jnt_range[jids, 1].copy(),
    )


class FootKinematics:
    """World position and linear velocity of the four foot sites from qpos/qvel, in torch over the
    batch, on whatever device and float dtype the simulation's arrays have (float64 on the CPU
    stepper, float32 on MuJoCo Warp). The env needs only these after a step, so the steppers skip
    MuJoCo's post-step mjSTAGE_VEL, which would also redo collision and constraints (see README,
    Throughput).

    Each leg is a chain of three unrotated bodies, each with one hinge at its origin along one of
    its axes (the same axis on every leg), read from the model. The chain is folded from the foot
    inwards, one plane rotation per hinge, on (4, N) tensors per coordinate."""

    def __init__(self, model: mujoco.MjModel):
        site_ids = [model.site(n).id for n in config.FOOT_NAMES]
        trunk = model.body(TRUNK_BODY).id
        chains = []
        for sid in site_ids:
            chain, body = [], int(model.site_bodyid[sid])
            while body != trunk:
                chain.append(body)
                body = int(model.body_parentid[body])
            chains.append(chain[::-1])
        bodies = np.array(chains)                                                   # (4, 3) trunk -> foot
        joints = model.body_jntadr[bodies]
        axes = model.jnt_axis[joints]                                               # (4, 3, 3)
        along = np.argmax(np.abs(axes), axis=-1)                                    # (4, 3)
        if ((model.body_jntnum[bodies] != 1).any() or (model.jnt_type[joints] != mujoco.mjtJoint.mjJNT_HINGE).any()
                or (along != along[0]).any() or not np.allclose(np.abs(axes).max(axis=-1), 1.0)
                or np.abs(model.jnt_pos[joints]).max() > 0 or np.abs(model.body_quat[bodies] - [1, 0, 0, 0]).max() > 0
                or np.abs(model.site_quat[site_ids] - [1, 0, 0, 0]).max() > 0):
            raise RuntimeError("FootKinematics needs legs of unrotated bodies, one hinge each at the body origin "
                               "along the same body axis on every leg, and unrotated foot sites")
        self._along = [int(i) for i in along[0]]                                    # per body: 0 x, 1 y, 2 z
        sign = np.take_along_axis(axes, along[..., None], -1)[..., 0].T             # (3, 4) +-1
        self._host = {
            "sign": sign[..., None],                                                # (3, 4, 1)
            "pos": model.body_pos[bodies].transpose(1, 2, 0)[..., None],            # (3 bodies, 3 coords, 4 legs, 1)
            "qadr": model.jnt_qposadr[joints].T,                                    # (3, 4)
            "dadr": model.jnt_dofadr[joints].T,
            "site": model.site_pos[site_ids].T[..., None],                          # (3 coords, 4, 1)
        }
        self._const: dict = {}

    def _constants(self, like: torch.Tensor) -> dict:
        key = (like.device, like.dtype)
        if key not in self._const:
            self._const[key] = {k: torch.as_tensor(v, device=like.device,
                                                   dtype=torch.long if k in ("qadr", "dadr") else like.dtype)
                                for k, v in self._host.items()}
        return self._const[key]

    def __call__(self, qpos: torch.Tensor, qvel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 4, 3) world foot positions and (N, 4, 3) world foot linear velocities."""
        c = self._constants(qpos)
        # (legs, envs) rows, position and velocity side by side: the cost here is per call
        q, v = qpos.T.contiguous(), qvel.T.contiguous()
        angle = (q[c["qadr"]] * c["sign"]).float()  # float32 trig: several times faster, error ~1e-8 m
        cos, sin = angle.cos().to(q.dtype), angle.sin().to(q.dtype)               # (3, 4, N)
        rate = v[c["dadr"]] * c["sign"]
        n = q.shape[1]
        zeros = q.new_zeros((4, n))
        # per coordinate, (2, 4, N): [hinge -> foot, the foot's velocity relative to the trunk], in the current body's axes
        pv = [torch.stack([s.expand(4, n), zeros]) for s in c["site"]]
        for k in (2, 1, 0):
            i = self._along[k]
            j, l = (i + 1) % 3, (i + 2) % 3                      # the plane the hinge turns
            ck, sk = cos[k], sin[k]
            pj, pl = pv[j] * ck - pv[l] * sk, pv[j] * sk + pv[l] * ck  # now in the parent's axes
            pj[1] -= rate[k] * pl[0]                              # + rate * (axis x foot)
            pl[1] += rate[k] * pj[0]
            pv[j], pv[l] = pj, pl
            for d in range(3):
                pv[d][0] += c["pos"][k, d]                        # from the parent's origin
        # free joint: the trunk origin's velocity in world axes, its angular velocity in trunk axes
        (fx, vx), (fy, vy), (fz, vz) = pv
        vx += v[4] * fz - v[5] * fy
        vy += v[5] * fx - v[3] * fz
        vz += v[3] * fy - v[4] * fx
        w, x, y, z = q[3], q[4], q[5], q[6]
        rot = [[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
               [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
               [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]]
        origin = torch.stack([q[:3], v[:3]], 1)[:, :, None]                       # (3, 2, 1, N)
        world = torch.stack([origin[a] + rot[a][0] * pv[0] + rot[a][1] * pv[1] + rot[a][2] * pv[2]
                             for a in range(3)], -1)
        return world[0].transpose(0, 1), world[1].transpose(0, 1)                 # (2, 4, N, 3) -> 2 x (N, 4, 3)


def _pair(model: mujoco.MjModel, geom: int, ground: int) -> int:
    g1, g2 = model.pair_geom1, model.pair_geom2  # the compiler may swap a pair's order
    (i,) = np.flatnonzero(((g1 == geom) & (g2 == ground)) | ((g1 == ground) & (g2 == geom)))
    return int(i)


def total_mass(model: mujoco.MjModel) -> float:
    return float(model.body_subtreemass[model.body(TRUNK_BODY).id])
