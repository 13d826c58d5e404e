"""Our quadruped as a USD asset for Isaac Lab, written from the embedded MJCF with `pxr`.

Isaac Lab's Go2 task loads `go2.usd` from NVIDIA's asset host (ISAACLAB_NUCLEUS_DIR). Where that
host is unreachable, `build_asset_root(folder)` writes our own robot (harness/mujoco/assets/
quadruped.xml: the same masses, inertias, joint placement, axes and ranges, and collision shapes)
as a UsdPhysics articulation at the path the task expects,

    <folder>/Isaac/IsaacLab/Robots/Unitree/Go2/go2.usd

so that `ISAACSIM_ASSET_ROOT=<folder>` makes the unmodified task cfg load it. Torch-free; needs
only `pxr` (usd-core, which Isaac Lab 3.0 installs).

What differs from the real go2.usd (see README, "Isaac Lab backend"):
  - primitive collision shapes only: a box trunk, capsule thighs, sphere feet (no hip or calf
    colliders, no meshes), as our MJCF;
  - each foot is its own body (Isaac Lab's contact sensor and air-time terms want `*_foot`
    bodies), fixed to the calf, carrying 0.01 kg of the calf's 0.241 kg;
  - the trunk body is named `base`, as in go2.usd (our MJCF calls it `trunk`);
  - no visual meshes; joint drives and limits are authored, actuators come from the task cfg.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

from harness import config

MJCF = Path(__file__).resolve().parents[1] / "mujoco" / "assets" / "quadruped.xml"
ASSET_SUBPATH = Path("Isaac/IsaacLab/Robots/Unitree/Go2/go2.usd")
# The flat task's ground (TerrainImporterCfg "plane" -> GroundPlaneCfg's default usd_path)
GROUND_SUBPATH = Path("Isaac/IsaacLab/Environments/Grid/default_ground_plane_checker_v1/default_ground_plane.usda")
BASE = "base"
FOOT_MASS = 0.01           # kg, moved from each calf to its foot body
FOOT_FRICTION = 0.8        # our MJCF's contact pairs (static and dynamic)


def _vec(text: str | None, default=(0.0, 0.0, 0.0)) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split()) if text else tuple(default)


def _collision_geoms(body: ET.Element) -> list[ET.Element]:
    return [g for g in body.findall("geom") if g.get("class") in ("collision", "foot")]


def read_mjcf(path: Path = MJCF) -> dict:
    """The links of our MJCF: name -> (parent, pos in parent, inertial, joint, collision geoms)."""
    root = ET.parse(path).getroot()
    defaults = {d.get("class"): d for d in root.iter("default") if d.get("class")}
    trunk = next(b for b in root.find("worldbody").iter("body") if b.find("freejoint") is not None)
    links = {}

    def walk(body: ET.Element, parent: str | None, name: str) -> None:
        inertial = body.find("inertial")
        joint = body.find("joint")
        jinfo = None
        if joint is not None:
            cls = defaults[joint.get("class")].find("joint")
            jinfo = {"name": joint.get("name"), "axis": _vec(cls.get("axis")), "range": _vec(cls.get("range"))}
        links[name] = {
            "parent": parent,
            "pos": _vec(body.get("pos")),
            "mass": float(inertial.get("mass")),
            "com": _vec(inertial.get("pos")),
            "inertia": _vec(inertial.get("diaginertia")),
            "joint": jinfo,
            "geoms": _collision_geoms(body),
        }
        for child in body.findall("body"):
            walk(child, name, child.get("name"))

    walk(trunk, None, BASE)
    return links


def write_usd(path: Path, mjcf: Path = MJCF) -> Path:
    """Write our quadruped as a floating-base UsdPhysics articulation to `path`."""
    from pxr import Gf, Sdf, Usd, UsdGeom, UsdPhysics, UsdShade

    links = read_mjcf(mjcf)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stage = Usd.Stage.CreateNew(str(path))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    UsdPhysics.SetStageKilogramsPerUnit(stage, 1.0)
    robot = UsdGeom.Xform.Define(stage, "/Robot")
    stage.SetDefaultPrim(robot.GetPrim())

    material = UsdPhysics.MaterialAPI.Apply(stage.DefinePrim("/Robot/Looks/foot_material", "Material"))
    material.CreateStaticFrictionAttr(FOOT_FRICTION)
    material.CreateDynamicFrictionAttr(FOOT_FRICTION)
    material.CreateRestitutionAttr(0.0)

    world = {}   # link -> position in the robot frame (all joints at zero: no link rotations)
    for name, link in links.items():
        parent = link["parent"]
        world[name] = link["pos"] if parent is None else tuple(a + b for a, b in zip(world[parent], link["pos"]))

    def body(name: str, pos, mass: float, com, inertia) -> Usd.Prim:
        xf = UsdGeom.Xform.Define(stage, f"/Robot/{name}")
        xf.AddTranslateOp().Set(Gf.Vec3d(*pos))
        prim = xf.GetPrim()
        UsdPhysics.RigidBodyAPI.Apply(prim)
        m = UsdPhysics.MassAPI.Apply(prim)
        m.CreateMassAttr(float(mass))
        m.CreateCenterOfMassAttr(Gf.Vec3f(*com))
        m.CreateDiagonalInertiaAttr(Gf.Vec3f(*inertia))
        m.CreatePrincipalAxesAttr(Gf.Quatf(1.0, 0.0, 0.0, 0.0))
        return prim

    def collider(prim_path: str, geom: ET.Element) -> None:
        kind = geom.get("type") or "sphere"          # the foot class is a sphere
        if kind == "box":
            half = _vec(geom.get("size"))
            cube = UsdGeom.Cube.Define(stage, prim_path)
            cube.CreateSizeAttr(2.0)
            cube.AddTranslateOp().Set(Gf.Vec3d(*_vec(geom.get("pos"))))
            cube.AddScaleOp().Set(Gf.Vec3f(*half))
            gprim = cube
        elif kind == "capsule":
            radius = float(geom.get("size").split()[0])
            a, b = _vec(geom.get("fromto"))[:3], _vec(geom.get("fromto"))[3:]
            if a[0] != b[0] or a[1] != b[1]:
                raise ValueError(f"only z-aligned capsules are supported, got fromto {a} {b}")
            cap = UsdGeom.Capsule.Define(stage, prim_path)
            cap.CreateAxisAttr("Z")
            cap.CreateRadiusAttr(radius)
            cap.CreateHeightAttr(abs(b[2] - a[2]))
            cap.AddTranslateOp().Set(Gf.Vec3d(a[0], a[1], 0.5 * (a[2] + b[2])))
            gprim = cap
        elif kind == "sphere":
            sphere = UsdGeom.Sphere.Define(stage, prim_path)
            sphere.CreateRadiusAttr(0.022 if geom.get("size") is None else float(geom.get("size")))
            gprim = sphere
        else:
            raise ValueError(f"unsupported collision geom type {kind!r}")
        UsdPhysics.CollisionAPI.Apply(gprim.GetPrim())
        UsdShade.MaterialBindingAPI.Apply(gprim.GetPrim()).Bind(
            UsdShade.Material(material.GetPrim()), UsdShade.Tokens.weakerThanDescendants, "physics")

    def fixed_or_revolute(name: str, parent: str, child: str, local_pos, joint) -> None:
        if joint is None:
            j = UsdPhysics.FixedJoint.Define(stage, f"/Robot/joints/{name}")
        else:
            j = UsdPhysics.RevoluteJoint.Define(stage, f"/Robot/joints/{name}")
            axis = joint["axis"]
            j.CreateAxisAttr({(1.0, 0.0, 0.0): "X", (0.0, 1.0, 0.0): "Y", (0.0, 0.0, 1.0): "Z"}[tuple(axis)])
            lo, hi = joint["range"]
            j.CreateLowerLimitAttr(math.degrees(lo))
            j.CreateUpperLimitAttr(math.degrees(hi))
            drive = UsdPhysics.DriveAPI.Apply(j.GetPrim(), "angular")
            drive.CreateTypeAttr("force")
            drive.CreateStiffnessAttr(0.0)
            drive.CreateDampingAttr(0.0)
            drive.CreateMaxForceAttr(config.TORQUE_LIMIT)
        j.CreateBody0Rel().SetTargets([Sdf.Path(f"/Robot/{parent}")])
        j.CreateBody1Rel().SetTargets([Sdf.Path(f"/Robot/{child}")])
        j.CreateLocalPos0Attr(Gf.Vec3f(*local_pos))
        j.CreateLocalRot0Attr(Gf.Quatf(1.0, 0.0, 0.0, 0.0))
        j.CreateLocalPos1Attr(Gf.Vec3f(0.0, 0.0, 0.0))
        j.CreateLocalRot1Attr(Gf.Quatf(1.0, 0.0, 0.0, 0.0))

    for name, link in links.items():
        feet = [g for g in link["geoms"] if g.get("class") == "foot"]
        mass = link["mass"] - FOOT_MASS * len(feet)
        prim = body(name, world[name], mass, link["com"], link["inertia"])
        for g in link["geoms"]:
            if g.get("class") != "foot":
                collider(f"{prim.GetPath()}/collision", g)
        if name == BASE:
            UsdPhysics.ArticulationRootAPI.Apply(prim)
        else:
            j = link["joint"]
            fixed_or_revolute(j["name"], link["parent"], name, link["pos"], j)
        for g in feet:
            foot = g.get("name")
            offset = _vec(g.get("pos"))
            fpos = tuple(a + b for a, b in zip(world[name], offset))
            r = 0.022
            fprim = body(foot, fpos, FOOT_MASS, (0.0, 0.0, 0.0), (0.4 * FOOT_MASS * r * r,) * 3)
            collider(f"{fprim.GetPath()}/collision", g)
            fixed_or_revolute(f"{foot}_fixed_joint", name, foot, offset, None)
    stage.GetRootLayer().Save()
    return path


def write_ground(path: Path) -> Path:
    """A ground plane as Isaac Lab's spawn_ground_plane reads it: a collision `Plane` under the
    default prim (the task binds its own physics material to it). 200 m x 200 m, z up, at z = 0."""
    from pxr import Usd, UsdGeom, UsdPhysics

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stage = Usd.Stage.CreateNew(str(path))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    root = UsdGeom.Xform.Define(stage, "/GroundPlane")
    stage.SetDefaultPrim(root.GetPrim())
    plane = UsdGeom.Plane.Define(stage, "/GroundPlane/CollisionPlane")
    plane.CreateAxisAttr("Z")
    plane.CreateWidthAttr(200.0)
    plane.CreateLengthAttr(200.0)
    UsdPhysics.CollisionAPI.Apply(plane.GetPrim())
    stage.GetRootLayer().Save()
    return path


def build_asset_root(folder: Path) -> Path:
    """Write our robot and a ground plane where Isaac Lab's Go2 flat task looks for its assets
    (go2.usd, the default ground plane) under ISAACSIM_ASSET_ROOT=folder."""
    folder = Path(folder).resolve()
    write_usd(folder / ASSET_SUBPATH)
    write_ground(folder / GROUND_SUBPATH)
    return folder


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(description="Write our quadruped as Isaac Lab's go2.usd under an asset root.")
    p.add_argument("folder", help="the folder to use as ISAACSIM_ASSET_ROOT")
    a = p.parse_args(argv)
    root = build_asset_root(Path(a.folder))
    print(f"wrote {root / ASSET_SUBPATH}\nnow: export ISAACSIM_ASSET_ROOT={root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
