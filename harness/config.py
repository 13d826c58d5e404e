"""Fixed facts of the task, shared by every backend and by evaluation.

Everything here decides the score, so train.py may read it but never changes it.
Numbers follow Isaac Lab's Go2 velocity task so results carry over between backends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

# --- robot ---------------------------------------------------------------------------

# Our joint order, used everywhere (observations, actions, state). Leg by leg, hip to calf,
# which is also MuJoCo's qpos order for our MJCF. Isaac Lab 3.0's order follows its physics
# backend (PhysX: by type, all hips, all thighs, all calves; Newton: the USD's depth-first order);
# harness/isaaclab/read_state.py maps between them by name.
LEGS = ("FL", "FR", "RL", "RR")
JOINT_NAMES = tuple(f"{leg}_{part}_joint" for leg in LEGS for part in ("hip", "thigh", "calf"))
FOOT_NAMES = tuple(f"{leg}_foot" for leg in LEGS)
NUM_JOINTS = 12
NUM_FEET = 4

# Default standing pose (rad), in JOINT_NAMES order: hips +-0.1 (left +), thighs 0.8 front /
# 1.0 rear, calves -1.5.
DEFAULT_JOINT_POS = (
    0.1, 0.8, -1.5,   # FL
    -0.1, 0.8, -1.5,  # FR
    0.1, 1.0, -1.5,   # RL
    -0.1, 1.0, -1.5,  # RR
)
BASE_INIT_HEIGHT = 0.35  # m; the robot is dropped from here at reset and settles near 0.3 m

# --- control -------------------------------------------------------------------------

PHYSICS_DT = 0.005      # s, 200 Hz
DECIMATION = 4          # physics steps per policy step
CONTROL_DT = PHYSICS_DT * DECIMATION  # 0.02 s, 50 Hz
EPISODE_SECONDS = 20.0
EPISODE_STEPS = int(round(EPISODE_SECONDS / CONTROL_DT))  # 1000
ACTION_SCALE = 0.25     # joint target = default pose + ACTION_SCALE * action
KP = 25.0
KD = 0.5
TORQUE_LIMIT = 23.5     # N m
ACTION_CLIP = 100.0     # the harness clips actions to +-this on both backends (Isaac Lab 3.0's rsl-rl
                        # wrapper clips only when the runner cfg sets clip_actions; its Go2 cfg does not)

# --- observation ---------------------------------------------------------------------

# 48-D, Isaac Lab's flat Go2 layout: (name, size, uniform noise half-width or 0).
OBS_LAYOUT = (
    ("base_lin_vel", 3, 0.1),
    ("base_ang_vel", 3, 0.2),
    ("projected_gravity", 3, 0.05),
    ("velocity_commands", 3, 0.0),
    ("joint_pos", 12, 0.01),   # minus default pose
    ("joint_vel", 12, 1.5),
    ("actions", 12, 0.0),      # last action
)
OBS_DIM = sum(size for _, size, _ in OBS_LAYOUT)
assert OBS_DIM == 48

# --- terminations / contacts ---------------------------------------------------------

CONTACT_FORCE_THRESHOLD = 1.0  # N; a body "touches" above this, as Isaac Lab's sensors
FLIP_GRAVITY_Z = 0.0           # terminate when projected gravity z rises above this (> 90 deg tilt)

# --- terrain -------------------------------------------------------------------------

TERRAINS = ("flat", "rough")
TERRAIN_LEVELS = 10            # difficulty rows of the rough terrain

# --- tasks ---------------------------------------------------------------------------

# A branch's task, chosen by the researcher (`uv run train.py --task rough`), never by train.py: the
# terrain its panel and held-out check are scored on. Scores pair only within one task.
TASKS = TERRAINS
DEFAULT_TASK = "flat"

# --- evaluation panel ----------------------------------------------------------------

PANEL_SEED = 2_000_003         # never used for training (training seeds are small ints)
PANEL_EPISODES = 256            # sampling SE of vel_err 0.006 (64: 0.012), ~25 s to score: benchmarks/panel_size.py
PANEL_SEGMENT_SECONDS = 5.0
PANEL_ZERO_FRACTION = 0.10
COMMAND_NAMES = ("lin_vel_x", "lin_vel_y", "ang_vel_z")   # v_x, v_y (m/s), yaw rate (rad/s), in that order
PANEL_RANGES = {"lin_vel_x": (-1.0, 1.0), "lin_vel_y": (-1.0, 1.0), "ang_vel_z": (-1.0, 1.0)}
# On the rough task the same commands are walked with episodes spread evenly over the difficulty
# levels (episode e on level e * TERRAIN_LEVELS // episodes; the terrain type cycles with e).

# --- held-out check ------------------------------------------------------------------

# Scored by the evaluation process on commands drawn there from a fresh seed (so never known in
# advance), under each condition: EnvOptions changes over the evaluation options, within BOUNDS.
HELD_OUT_CONDITIONS = {
    "nominal": {},
    "push": {"push_interval_seconds": 5.0, "push_velocity": 0.5},
    "friction_0.4": {"friction_range": (0.4, 0.4)},
    "friction_1.2": {"friction_range": (1.2, 1.2)},
    "mass_+2kg": {"added_mass_range": (2.0, 2.0)},
    "obs_noise": {"obs_noise": True},
}
HELD_OUT_EPISODES = 16          # per condition


# --- training-environment options train.py may set, within fixed bounds ---------------

# Hard bounds the harness enforces on train.py's options.
BOUNDS = {
    "num_envs": (1, 16384),              # on cuda; on the CPU at most CPU_MAX_ENVS (check_device)
    "command_range": (-2.0, 2.0),        # each of lin_vel_x, lin_vel_y, ang_vel_z
    "resample_seconds": (1.0, 20.0),
    "standing_fraction": (0.0, 1.0),
    "friction_range": (0.2, 1.5),
    "added_mass_range": (-1.0, 3.0),     # kg on the trunk
    "push_interval_seconds": (2.0, 20.0),
    "push_velocity": (0.0, 1.5),         # m/s, max planar velocity change of a push
    "initial_terrain_level": (0, TERRAIN_LEVELS - 1),
}


CPU_MAX_ENVS = 8192  # a CPU steps 512 in about 20 ms; past this a step takes seconds


class OptionError(ValueError):
    """An environment option outside what the harness allows."""


def check_device(o: "EnvOptions", device) -> None:
    """The bounds that depend on where the env runs: num_envs above CPU_MAX_ENVS only on cuda."""
    if not str(device).startswith("cuda") and o.num_envs > CPU_MAX_ENVS:
        raise OptionError(f"num_envs={o.num_envs} is outside the harness bounds on the CPU (1, {CPU_MAX_ENVS}); "
                          f"up to {BOUNDS['num_envs'][1]} on cuda")


@dataclass(frozen=True)
class EnvOptions:
    """Training-environment options. Defaults mirror Isaac Lab's Go2 velocity task."""

    num_envs: int = 256
    terrain: str = "flat"                       # one of TERRAINS
    initial_terrain_level: int = 0              # rough only; a curriculum may move levels later
    lin_vel_x: tuple[float, float] = (-1.0, 1.0)
    lin_vel_y: tuple[float, float] = (-1.0, 1.0)
    ang_vel_z: tuple[float, float] = (-1.0, 1.0)
    resample_seconds: float = 10.0
    standing_fraction: float = 0.02
    obs_noise: bool = True
    friction_range: tuple[float, float] | None = None     # None: fixed 0.8
    added_mass_range: tuple[float, float] | None = None   # None: no added mass
    push_interval_seconds: float | None = None            # None: no pushes
    push_velocity: float = 0.5

    def __post_init__(self) -> None:
        validate(self)

    def replace(self, **changes) -> "EnvOptions":
        return replace(self, **changes)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def check_range(name: str, value, bound: tuple[float, float]) -> None:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise OptionError(f"{name} must be a (low, high) pair of numbers, got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise OptionError(f"{name} must be a finite (low, high) pair with low <= high, got {value!r}")
    if lo < bound[0] or hi > bound[1]:
        raise OptionError(f"{name}={value!r} is outside the harness bounds {bound}")


def _check_scalar(name: str, value, bound: tuple[float, float]) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise OptionError(f"{name} must be a finite number, got {value!r}")
    if not bound[0] <= value <= bound[1]:
        raise OptionError(f"{name}={value!r} is outside the harness bounds {bound}")


def validate(o: EnvOptions) -> None:
    """Raise OptionError naming the first option outside the harness's bounds."""
    if isinstance(o.num_envs, bool) or not isinstance(o.num_envs, int) or o.num_envs <= 0:
        raise OptionError(f"num_envs must be a positive int, got {o.num_envs!r}")
    _check_scalar("num_envs", o.num_envs, BOUNDS["num_envs"])
    if o.terrain not in TERRAINS:
        raise OptionError(f"unknown terrain {o.terrain!r}; choose one of {TERRAINS}")
    if not isinstance(o.initial_terrain_level, int):
        raise OptionError(f"initial_terrain_level must be an int, got {o.initial_terrain_level!r}")
    _check_scalar("initial_terrain_level", o.initial_terrain_level, BOUNDS["initial_terrain_level"])
    for name in COMMAND_NAMES:
        check_range(name, getattr(o, name), BOUNDS["command_range"])
    _check_scalar("resample_seconds", o.resample_seconds, BOUNDS["resample_seconds"])
    _check_scalar("standing_fraction", o.standing_fraction, BOUNDS["standing_fraction"])
    if not isinstance(o.obs_noise, bool):
        raise OptionError(f"obs_noise must be True or False, got {o.obs_noise!r}")
    if o.friction_range is not None:
        check_range("friction_range", o.friction_range, BOUNDS["friction_range"])
    if o.added_mass_range is not None:
        check_range("added_mass_range", o.added_mass_range, BOUNDS["added_mass_range"])
    if o.push_interval_seconds is not None:
        _check_scalar("push_interval_seconds", o.push_interval_seconds, BOUNDS["push_interval_seconds"])
    _check_scalar("push_velocity", o.push_velocity, BOUNDS["push_velocity"])


def make_options(**kwargs) -> EnvOptions:
    """EnvOptions from keyword arguments, with a clear error for unknown names."""
    unknown = sorted(set(kwargs) - set(EnvOptions.names()))
    if unknown:
        raise OptionError(f"unknown environment option(s) {unknown}; valid options: {list(EnvOptions.names())}")
    return EnvOptions(**kwargs)
