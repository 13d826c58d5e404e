"""The Isaac Lab backend: the Unitree Go2 velocity task of Isaac Lab 2.3.x behind harness.env_api.

Three layers, so that everything but the simulator itself is testable without Isaac Sim:

1. Installation and boot: `check_installed()`, `check_eula()`, `start_app(device)`. Isaac Sim
   must be booted through AppLauncher before anything imports `isaaclab.*` (the harness calls
   harness.backends.start_backend() before the training clock starts).
2. Pure-torch adapters that read Isaac-shaped objects (an Articulation-like `robot`, a
   ContactSensor-like `contact`, a RayCaster-like height scan) into our backend-neutral
   RobotState: `resolve_joint_map`, `resolve_bodies`, `read_robot_state`, `ground_height`.
3. The configuration edit `configure_env_cfg` (rewards removed, our terrain mixture, DR,
   commands, noise off, our termination set, one hook term) and the driver
   `IsaacLabQuadrupedEnv`, which owns one ManagerBasedRLEnv.

How a step works: Isaac Lab's ManagerBasedRLEnv.step() steps physics, computes terminations,
then rewards, then resets finished envs, then resamples commands. Our only reward term is a
hook that runs between terminations and resets; it snapshots the transition into a RobotState
(pre-reset, with the command the policy acted on). After step() returns we read the post-reset
state once more for the observation, so obs is already the first observation of a new episode
where an env finished, exactly as on the MuJoCo backend.
"""

from __future__ import annotations

import importlib.util
import math
import os
import random
import sys
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Callable, NamedTuple

import numpy as np
import torch

from harness import config
from harness.config import EnvOptions, OptionError
from harness.env_api import BackendError, check_actions
from harness.state import RobotState, build_observation

# --- fixed facts of the Isaac Lab task ---------------------------------------------------

TASK_IDS = {
    "flat": "Isaac-Velocity-Flat-Unitree-Go2-v0",
    "rough": "Isaac-Velocity-Rough-Unitree-Go2-v0",
}
# The DR-style mixture without boxes and stairs (mesh boxes/stairs deadlocked PhysX before).
ROUGH_SUB_TERRAINS = ("random_rough", "hf_pyramid_slope", "hf_pyramid_slope_inv")

ROBOT = "robot"                  # scene entity names used by the Go2 velocity cfg
CONTACT_SENSOR = "contact_forces"
HEIGHT_SCANNER = "height_scanner"
COMMAND = "base_velocity"
HOOK_TERM = "harness_transition"   # our single reward term (the transition hook)
FLIP_TERM = "harness_flipped"      # our extra termination term
BASE_BODY = "base"
THIGH_BODIES = tuple(f"{leg}_thigh" for leg in config.LEGS)
FOOT_BODIES = config.FOOT_NAMES

# Isaac Sim 5.x reads this variable; YES, Y or 1 (case-insensitive) accepts the NVIDIA
# Omniverse EULA without the interactive prompt, which would hang a supervised worker.
EULA_ENV_VAR = "OMNI_KIT_ACCEPT_EULA"
EULA_URL = "https://docs.isaacsim.omniverse.nvidia.com/latest/common/NVIDIA_Omniverse_License_Agreement.html"

INSTALL_HINT = (
    "Install Isaac Lab 2.3.x (with Isaac Sim 5.1) into a Python 3.11 environment, then this project's own\n"
    "dependencies into the same environment (Linux x86_64, GLIBC 2.35+, NVIDIA driver):\n"
    "    python3.11 -m venv ~/isaaclab-env && source ~/isaaclab-env/bin/activate && pip install -U pip\n"
    "    pip install torch==2.7.0 torchvision==0.22.0 --index-url https://download.pytorch.org/whl/cu128\n"
    "    pip install 'isaaclab[isaacsim,rsl-rl]==2.3.2.post1' --extra-index-url https://pypi.nvidia.com\n"
    "    pip install 'mujoco>=3.17' 'matplotlib>=3.8' 'imageio>=2.34' 'imageio-ffmpeg>=0.5' pytest\n"
    "then run the project's commands with that interpreter, e.g. `python train.py --backend isaaclab`\n"
    "(see README.md, section 'Isaac Lab backend')."
)

_APP = None            # the SimulationApp of this process, once booted
_OPEN_ENV = None       # Isaac Lab allows one simulation (one env) per process at a time


# --- 1. installation, EULA, boot -------------------------------------------------------


def missing_packages() -> list[str]:
    """Top-level packages the backend needs that this interpreter cannot find.

    Uses find_spec only: importing `isaaclab` would bootstrap Isaac Sim (and its EULA prompt).
    """
    return [name for name in ("isaaclab", "isaacsim") if importlib.util.find_spec(name) is None]


def check_installed() -> None:
    missing = missing_packages()
    if missing:
        version = ".".join(map(str, sys.version_info[:3]))
        raise BackendError(
            f"the Isaac Lab backend needs the Python package(s) {missing}, which are not installed for "
            f"{sys.executable} (Python {version}).\n{INSTALL_HINT}"
        )
    if sys.version_info[:2] != (3, 11):
        raise BackendError(
            f"Isaac Sim 5.x / Isaac Lab 2.3.x run on Python 3.11 only; this is Python {sys.version.split()[0]} "
            f"({sys.executable}).\n{INSTALL_HINT}"
        )


def eula_accepted(environ=os.environ) -> bool:
    return environ.get(EULA_ENV_VAR, "").strip().lower() in ("yes", "y", "1")


def check_eula(environ=os.environ) -> None:
    if not eula_accepted(environ):
        raise BackendError(
            "Isaac Sim needs the NVIDIA Omniverse License Agreement (EULA) accepted before it starts, and the\n"
            "harness never accepts it for you. Read it at\n"
            f"    {EULA_URL}\n"
            f"and, if you accept it, set the environment variable Isaac Sim reads:\n"
            f"    export {EULA_ENV_VAR}=YES\n"
            f"(currently {EULA_ENV_VAR}={environ.get(EULA_ENV_VAR, '<unset>')!s})."
        )


def isaac_device(device: torch.device | str) -> str:
    """AppLauncher's device string: 'cuda:N' or 'cpu'."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda:{device.index or 0}"
    if device.type == "cpu":
        return "cpu"
    raise BackendError(f"Isaac Lab simulates on 'cuda' or 'cpu', not {device}")


def start_app(device: torch.device | str):
    """Boot Isaac Sim headless once per process (AppLauncher); returns the SimulationApp.

    Slow (tens of seconds warm; the very first run of an install also pulls and caches
    extensions, often over 10 minutes). The harness calls this before its clock starts.
    """
    global _APP
    if _APP is not None:
        return _APP
    check_installed()
    check_eula()
    dev = isaac_device(device)
    # The first `isaaclab` import bootstraps Isaac Sim; it must be AppLauncher's.
    from isaaclab.app import AppLauncher

    # Kit parses sys.argv; hide the harness's own arguments from it during the boot.
    argv = sys.argv
    sys.argv = argv[:1]
    try:
        launcher = AppLauncher(headless=True, device=dev)
    except SystemExit as e:  # Kit exits the interpreter when it cannot start
        raise BackendError(f"Isaac Sim failed to start on {dev} (exit status {e.code}); see its log above") from e
    finally:
        sys.argv = argv
    _APP = launcher.app
    return _APP


# --- 2. adapters: Isaac-shaped data -> RobotState ---------------------------------------


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
    """Ids of `names` in the order given, via Isaac Lab's find_bodies (names are exact regexes)."""
    try:
        ids, found = owner.find_bodies(list(names), preserve_order=True)
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
    frame), the quantities Isaac's own tracking rewards and metrics use. Trunk and thigh contacts
    are the max over the sensor's history (all physics substeps of the step), as Isaac's
    illegal_contact termination and undesired_contacts reward; foot contact is the latest substep,
    as the sensor's air-time bookkeeping.
    """
    d = robot.data
    c = contact.data
    base_pos = d.root_pos_w
    foot_pos = d.body_pos_w[:, bodies.foot_bodies]                            # (N, 4, 3)
    ground = ground_height(torch.cat((base_pos[:, None], foot_pos), dim=1), ray_hits_w)
    history = c.net_forces_w_history.norm(dim=-1)                            # (N, T, B)
    latest = history[:, 0]
    peak = history.amax(dim=1)
    foot_force = latest[:, bodies.foot_sensor]
    f = bodies.foot_sensor
    return RobotState(
        base_lin_vel=d.root_lin_vel_b.clone(),
        base_ang_vel=d.root_ang_vel_b.clone(),
        projected_gravity=d.projected_gravity_b.clone(),
        base_height=base_pos[:, 2] - ground[:, 0],
        joint_pos=joints.to_ours(d.joint_pos),
        default_joint_pos=joints.to_ours(d.default_joint_pos),
        joint_vel=joints.to_ours(d.joint_vel),
        joint_acc=joints.to_ours(d.joint_acc),
        torques=joints.to_ours(d.applied_torque),
        actions=actions.clone(),
        last_actions=last_actions.clone(),
        commands=commands.clone(),
        foot_contact=foot_force > threshold,
        foot_contact_force=foot_force,
        foot_air_time=c.current_air_time[:, f].clone(),
        foot_last_air_time=c.last_air_time[:, f].clone(),
        foot_contact_time=c.current_contact_time[:, f].clone(),
        foot_last_contact_time=c.last_contact_time[:, f].clone(),
        foot_first_contact=contact.compute_first_contact(step_dt)[:, f].bool(),
        foot_vel=d.body_lin_vel_w[:, bodies.foot_bodies].clone(),
        foot_height=foot_pos[..., 2] - ground[:, 1:],
        undesired_contact=peak[:, bodies.thigh_sensor] > threshold,
        trunk_contact=(peak[:, bodies.base_sensor] > threshold).any(dim=1),
        episode_step=episode_step.clone().long(),
        terrain_level=terrain_level.clone().long(),
        dt=float(step_dt),
    )


def finite_rows(state: RobotState) -> torch.Tensor:
    """(N,) bool: envs whose float state is all finite (PhysX blow-ups give NaN/inf)."""
    ok = torch.ones(state.num_envs, dtype=torch.bool, device=state.base_lin_vel.device)
    for name in ("base_lin_vel", "base_ang_vel", "projected_gravity", "base_height", "joint_pos",
                 "joint_vel", "joint_acc", "torques", "foot_vel", "foot_height"):
        x = getattr(state, name)
        ok &= torch.isfinite(x.reshape(x.shape[0], -1)).all(dim=1)
    return ok


def _zero_rows(state: RobotState, bad: torch.Tensor) -> RobotState:
    """The state with non-finite envs' float rows zeroed, so rewards stay finite."""
    out = {}
    for name, v in vars(state).items():
        if isinstance(v, torch.Tensor) and v.dtype.is_floating_point and name != "default_joint_pos":
            v = torch.where(bad.view(-1, *([1] * (v.dim() - 1))), torch.zeros_like(v), v)
        out[name] = v
    return RobotState(**out)


# --- 3a. the environment configuration --------------------------------------------------


class IsaacTerms(NamedTuple):
    """Isaac Lab classes/functions the cfg edit needs (real ones from isaaclab, fakes in tests)."""

    RewardTermCfg: Callable[..., Any]
    TerminationTermCfg: Callable[..., Any]
    EventTermCfg: Callable[..., Any]
    push_by_setting_velocity: Callable[..., Any]


def _isaac_terms() -> IsaacTerms:
    from isaaclab.envs import mdp
    from isaaclab.managers import EventTermCfg, RewardTermCfg, TerminationTermCfg

    return IsaacTerms(RewardTermCfg, TerminationTermCfg, EventTermCfg, mdp.push_by_setting_velocity)


def transition_hook(env) -> torch.Tensor:
    """Our only reward term. Isaac Lab calls it after terminations and before resets; it hands
    the moment to the owning IsaacLabQuadrupedEnv and contributes nothing to Isaac's reward."""
    hook = getattr(env, "harness_transition_hook", None)
    if hook is not None:
        hook()
    return torch.zeros(env.num_envs, device=env.device)


def flipped_base(env) -> torch.Tensor:
    """Termination: base tilted past 90 degrees (projected gravity z above the harness limit)."""
    return env.scene[ROBOT].data.projected_gravity_b[:, 2] > config.FLIP_GRAVITY_Z


def _term_names(group) -> list[str]:
    return [k for k in vars(group) if not k.startswith("_")]


def configure_env_cfg(env_cfg, options: EnvOptions, *, seed: int, device: str, external_commands: bool,
                      terms: IsaacTerms):
    """Edit the registry's Go2 velocity cfg in place into the harness's task; returns it."""
    _check_fixed_sim(env_cfg)
    env_cfg.seed = int(seed)
    env_cfg.sim.device = device
    env_cfg.scene.num_envs = options.num_envs
    _configure_terrain(env_cfg, options, seed)
    _configure_observations(env_cfg)
    _configure_commands(env_cfg, options, external_commands)
    _configure_events(env_cfg, options, terms)
    _configure_rewards(env_cfg, terms)
    _configure_terminations(env_cfg, terms)
    if getattr(env_cfg, "curriculum", None) is not None:
        for name in _term_names(env_cfg.curriculum):   # train.py owns curricula (set_terrain_levels)
            setattr(env_cfg.curriculum, name, None)
    return env_cfg


def _check_fixed_sim(env_cfg) -> None:
    """The registry cfg must still be the task the harness's constants describe."""
    facts = {
        "sim.dt": (env_cfg.sim.dt, config.PHYSICS_DT),
        "decimation": (env_cfg.decimation, config.DECIMATION),
        "episode_length_s": (env_cfg.episode_length_s, config.EPISODE_SECONDS),
        "actions.joint_pos.scale": (env_cfg.actions.joint_pos.scale, config.ACTION_SCALE),
    }
    wrong = {k: v for k, v in facts.items() if not math.isclose(float(v[0]), float(v[1]))}
    if wrong:
        raise BackendError(
            "this Isaac Lab's Go2 velocity task differs from the harness's fixed simulation "
            + ", ".join(f"{k}={a} (harness {b})" for k, (a, b) in wrong.items())
            + "; use Isaac Lab 2.3.x"
        )


def _configure_terrain(env_cfg, options: EnvOptions, seed: int) -> None:
    terrain = env_cfg.scene.terrain
    if options.terrain == "flat":
        terrain.terrain_type = "plane"
        terrain.terrain_generator = None
        env_cfg.scene.height_scanner = None
        return
    gen = terrain.terrain_generator
    if gen is None or terrain.terrain_type != "generator":
        raise BackendError("the Isaac Lab rough Go2 cfg has no terrain generator; use Isaac Lab 2.3.x")
    missing = [k for k in ROUGH_SUB_TERRAINS if k not in gen.sub_terrains]
    if missing:
        raise BackendError(f"Isaac Lab's rough terrain lacks sub-terrains {missing}; use Isaac Lab 2.3.x")
    gen.sub_terrains = {k: gen.sub_terrains[k] for k in ROUGH_SUB_TERRAINS}   # no boxes, no stairs
    gen.num_rows = config.TERRAIN_LEVELS
    gen.curriculum = True          # rows are difficulty levels, as on the MuJoCo backend
    gen.seed = int(seed)
    terrain.max_init_terrain_level = options.initial_terrain_level


def _configure_observations(env_cfg) -> None:
    # We build the 48-D observation ourselves (our joint order, our noise); Isaac's policy group
    # stays only because the env needs one: no height scan, no corruption.
    policy = env_cfg.observations.policy
    policy.enable_corruption = False
    if hasattr(policy, "height_scan"):
        policy.height_scan = None


def _configure_commands(env_cfg, options: EnvOptions, external: bool) -> None:
    cmd = getattr(env_cfg.commands, COMMAND)
    cmd.heading_command = False            # yaw-rate commands, as ours
    cmd.rel_heading_envs = 0.0
    cmd.ranges.heading = None
    cmd.debug_vis = False
    cmd.ranges.lin_vel_x = tuple(options.lin_vel_x)
    cmd.ranges.lin_vel_y = tuple(options.lin_vel_y)
    cmd.ranges.ang_vel_z = tuple(options.ang_vel_z)
    if external:
        # Evaluation injects its panel. Isaac still "resamples" at reset; the driver writes the
        # panel's commands back after every step. One resampling period per episode makes
        # Isaac's Metrics/base_velocity/error_vel_xy an episode mean (see README).
        cmd.resampling_time_range = (config.EPISODE_SECONDS, config.EPISODE_SECONDS)
        cmd.rel_standing_envs = 0.0
    else:
        cmd.resampling_time_range = (options.resample_seconds, options.resample_seconds)
        cmd.rel_standing_envs = options.standing_fraction


def _configure_events(env_cfg, options: EnvOptions, terms: IsaacTerms) -> None:
    ev = env_cfg.events
    if options.friction_range is not None:
        lo, hi = options.friction_range
        ev.physics_material.params["static_friction_range"] = (lo, hi)
        ev.physics_material.params["dynamic_friction_range"] = (lo, hi)
        ev.physics_material.params["make_consistent"] = True   # dynamic <= static
    # else: Isaac's fixed 0.8 static / 0.6 dynamic, as its Go2 task
    if options.added_mass_range is None:
        ev.add_base_mass = None
    else:
        ev.add_base_mass.params["mass_distribution_params"] = tuple(options.added_mass_range)
    if options.push_interval_seconds is None:
        ev.push_robot = None
    else:
        v = options.push_velocity
        ev.push_robot = terms.EventTermCfg(
            func=terms.push_by_setting_velocity,
            mode="interval",
            interval_range_s=(options.push_interval_seconds, options.push_interval_seconds),
            params={"velocity_range": {"x": (-v, v), "y": (-v, v)}},
        )


def _configure_rewards(env_cfg, terms: IsaacTerms) -> None:
    for name in _term_names(env_cfg.rewards):      # rewards come from train.py on our RobotState
        setattr(env_cfg.rewards, name, None)
    setattr(env_cfg.rewards, HOOK_TERM, terms.RewardTermCfg(func=transition_hook, weight=1.0, params={}))


def _configure_terminations(env_cfg, terms: IsaacTerms) -> None:
    t = env_cfg.terminations
    keep = {"time_out", "base_contact"}             # 20 s time-out; trunk ("base") contact > 1 N
    for name in _term_names(t):
        if name not in keep:
            setattr(t, name, None)
    if getattr(t, "base_contact", None) is None or getattr(t, "time_out", None) is None:
        raise BackendError("the Isaac Lab Go2 cfg lacks its time_out/base_contact terminations; use Isaac Lab 2.3.x")
    t.base_contact.params["threshold"] = config.CONTACT_FORCE_THRESHOLD
    setattr(t, FLIP_TERM, terms.TerminationTermCfg(func=flipped_base, params={}))


# --- 3b. the driver -----------------------------------------------------------------------


class _Transition(NamedTuple):
    state: RobotState
    terminated: torch.Tensor
    truncated: torch.Tensor
    unstable: int
    isaac_error_vel_xy: torch.Tensor


def _yaw_quat(yaw: torch.Tensor) -> torch.Tensor:
    """(N, 4) w x y z quaternions of pure yaw rotations."""
    half = 0.5 * yaw
    z = torch.zeros_like(yaw)
    return torch.stack((torch.cos(half), z, z, torch.sin(half)), dim=-1)


def build_isaac_env(options: EnvOptions, seed: int, device: torch.device | str, external_commands: bool):
    """Boot (if needed), build the registry cfg, edit it, and construct the ManagerBasedRLEnv."""
    start_app(device)
    import isaaclab_tasks  # noqa: F401  (registers the Isaac-Velocity-* tasks with gymnasium)
    from isaaclab.envs import ManagerBasedRLEnv
    from isaaclab_tasks.utils import load_cfg_from_registry

    env_cfg = load_cfg_from_registry(TASK_IDS[options.terrain], "env_cfg_entry_point")
    configure_env_cfg(env_cfg, options, seed=seed, device=isaac_device(device),
                      external_commands=external_commands, terms=_isaac_terms())
    with keep_global_rng():
        return ManagerBasedRLEnv(cfg=env_cfg)


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
    """harness.env_api.QuadrupedEnv on Isaac Lab (GPU). See that module for the contract.

    Extra over the protocol: info["isaac_error_vel_xy"] (N,) holds Isaac Lab's own
    Metrics/base_velocity/error_vel_xy of each episode that ended this step (0 elsewhere), and
    info["isaac_log"] Isaac's extras["log"] means when any env reset this step.
    """

    obs_dim = config.OBS_DIM
    action_dim = config.NUM_JOINTS

    def __init__(self, options: EnvOptions, seed: int = 0, device: torch.device | str = "cuda",
                 external_commands: bool = False):
        _check_options(options)
        _claim_process()
        try:
            isaac_env = build_isaac_env(options, seed, device, external_commands)
        except BaseException:
            _release_process(None)
            raise
        try:
            self._attach(isaac_env, options, seed, external_commands)
        except BaseException:
            isaac_env.close()
            _release_process(None)
            raise

    @classmethod
    def from_isaac_env(cls, isaac_env, options: EnvOptions, seed: int = 0,
                       external_commands: bool = False) -> "IsaacLabQuadrupedEnv":
        """Wrap an already built (cfg-edited) ManagerBasedRLEnv; tests pass a fake one."""
        _check_options(options)
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
        default = self._joints.to_ours(self._robot.data.default_joint_pos[:1]).cpu()
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
            yaw = torch.as_tensor(yaw, dtype=torch.float32).detach().to(self.device).reshape(-1)
            if yaw.shape[0] != n or not torch.isfinite(yaw).all():
                raise ValueError(f"yaw must be {n} finite angles (one per env), got shape {tuple(yaw.shape)}")
        self._apply_levels(torch.ones(n, dtype=torch.bool, device=self.device))
        self._env.reset()
        if yaw is not None:
            pose = torch.cat((self._robot.data.root_pos_w, _yaw_quat(yaw)), dim=-1)
            self._robot.write_root_pose_to_sim(pose)
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
            "isaac_error_vel_xy": torch.where(done, t.isaac_error_vel_xy, 0.0),
        }
        if bool(done.any()):
            info["isaac_log"] = {k: _scalar(v) for k, v in self._env.extras.get("log", {}).items()}
        self.state = t.state
        return self._observation(obs_state), t.state, t.terminated, t.truncated, info

    def set_commands(self, commands: torch.Tensor, env_ids: torch.Tensor | None = None) -> None:
        commands = torch.as_tensor(commands).detach().to(self.device, torch.float32)
        ids = (torch.arange(self.num_envs, device=self.device) if env_ids is None
               else torch.as_tensor(env_ids, device=self.device).long().reshape(-1))
        if commands.shape != (len(ids), 3) or not torch.isfinite(commands).all():
            raise ValueError(f"commands must be a finite ({len(ids)}, 3) tensor, got shape {tuple(commands.shape)}")
        self._external[ids] = commands
        self._command.vel_command_b[ids] = commands
        self._command.is_standing_env[ids] = False   # Isaac would zero "standing" envs' commands

    def set_command_ranges(self, **ranges: tuple[float, float]) -> None:
        names = ("lin_vel_x", "lin_vel_y", "ang_vel_z")
        for name, value in ranges.items():
            if name not in names:
                raise OptionError(f"unknown command range {name!r}; choose from {list(names)}")
            config._check_range(name, value, config.BOUNDS["command_range"])
        for name, value in ranges.items():
            setattr(self._command.cfg.ranges, name, (float(value[0]), float(value[1])))  # read at each resample

    def set_terrain_levels(self, levels: torch.Tensor) -> None:
        levels = torch.as_tensor(levels).detach().to(self.device).long().reshape(-1)
        if levels.shape[0] != self.num_envs:
            raise ValueError(f"levels must have one entry per env ({self.num_envs}), got {levels.shape[0]}")
        if self._terrain is not None:
            self._pending_levels = levels.clamp(0, config.TERRAIN_LEVELS - 1)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._env.close()
            finally:
                _release_process(self)

    # --- internals -------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this environment was closed")

    def _read(self, episode_step: torch.Tensor) -> RobotState:
        return read_robot_state(
            self._robot, self._contact, self._joints, self._bodies,
            commands=self._command.command, actions=self._actions, last_actions=self._last_actions,
            episode_step=episode_step, terrain_level=self._levels, step_dt=self._step_dt,
            ray_hits_w=None if self._scanner is None else self._scanner.data.ray_hits_w,
        )

    def _read_observed(self, transition: RobotState) -> RobotState:
        """What the policy observes after step(): post-reset robot, current commands and last action."""
        d = self._robot.data
        return replace(
            transition,
            base_lin_vel=d.root_lin_vel_b.clone(),
            base_ang_vel=d.root_ang_vel_b.clone(),
            projected_gravity=d.projected_gravity_b.clone(),
            joint_pos=self._joints.to_ours(d.joint_pos),
            default_joint_pos=self._joints.to_ours(d.default_joint_pos),
            joint_vel=self._joints.to_ours(d.joint_vel),
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
            state = _zero_rows(state, bad)
            env.reset_buf[bad] = True                  # Isaac resets them with the rest
        terminated = env.reset_terminated.clone().bool() | bad
        truncated = env.reset_time_outs.clone().bool() & ~terminated
        metric = self._command.metrics.get("error_vel_xy")
        metric = torch.zeros(self.num_envs, device=self.device) if metric is None else metric.clone()
        self._apply_levels(env.reset_buf.bool())
        self._captured = _Transition(state, terminated, truncated, n_bad, metric)

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


def _check_options(options) -> None:
    if not isinstance(options, EnvOptions):
        raise OptionError(f"options must be a harness.config.EnvOptions, got {type(options).__name__}")
    config.validate(options)


def _claim_process() -> None:
    if _OPEN_ENV is not None and not _OPEN_ENV._closed:
        raise BackendError(
            "Isaac Lab runs one environment per process: close() the open IsaacLabQuadrupedEnv before making another"
        )


def _release_process(env) -> None:
    global _OPEN_ENV
    if env is None or _OPEN_ENV is env:
        _OPEN_ENV = None


# --- a check to run once on a GPU machine with Isaac Lab installed -----------------------


SELF_CHECK_MARK = "isaaclab-self-check:"


def self_check(terrain: str = "flat", num_envs: int = 16, steps: int = 100, device: str = "cuda:0") -> dict:
    """Boot, build, reset and step the real task with zero actions; report what it found.

        OMNI_KIT_ACCEPT_EULA=YES python -m harness.isaaclab_env --terrain rough --num-envs 4096 --steps 200

    Standing still with zero actions, a healthy setup shows base heights near 0.3 m, all four
    feet in contact and no terminations.
    """
    import time

    t0 = time.monotonic()
    start_app(device)
    t1 = time.monotonic()
    env = IsaacLabQuadrupedEnv(EnvOptions(num_envs=num_envs, terrain=terrain, obs_noise=False), seed=0, device=device)
    t2 = time.monotonic()
    try:
        obs = env.reset(yaw=torch.zeros(num_envs))
        zeros = torch.zeros(num_envs, config.NUM_JOINTS, device=env.device)
        terminated = 0
        _sync(env.device)
        t3 = time.monotonic()
        for _ in range(steps):
            obs, state, term, trunc, info = env.step(zeros)
            terminated += int(term.sum())
        _sync(env.device)
        t4 = time.monotonic()
        return {
            "terrain": terrain, "num_envs": num_envs, "steps": steps, "device": str(env.device),
            "boot_s": round(t1 - t0, 1), "build_s": round(t2 - t1, 1),
            "env_steps_per_s": round(steps * num_envs / max(t4 - t3, 1e-9)),
            "isaac_joint_order": list(env._robot.joint_names),
            "articulation_bodies": list(env._robot.body_names),
            "contact_sensor_bodies": list(env._contact.body_names),
            "obs_shape": list(obs.shape),
            "base_height_mean": round(float(state.base_height.mean()), 4),
            "foot_contact_fraction": [round(float(x), 3) for x in state.foot_contact.float().mean(dim=0)],
            "projected_gravity_z_mean": round(float(state.projected_gravity[:, 2].mean()), 4),
            "terminations": terminated,
            "state_finite": bool(finite_rows(state).all()),
        }
    finally:
        env.close()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv=None) -> int:
    import argparse
    import json

    p = argparse.ArgumentParser(description="Boot Isaac Sim and check the harness's Isaac Lab backend.")
    p.add_argument("--terrain", default="flat", choices=config.TERRAINS)
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--device", default="cuda:0")
    args = p.parse_args(argv)
    try:
        report = self_check(args.terrain, args.num_envs, args.steps, args.device)
    except BackendError as e:
        print(f"isaaclab backend: {e}", file=sys.stderr)
        return 2
    print(SELF_CHECK_MARK, json.dumps(report))   # one line: Kit prints plenty around it
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip Kit's teardown (its fast shutdown would exit 0 whatever happened)
