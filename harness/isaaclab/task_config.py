"""The edit of Isaac Lab 3.0's registry Go2 velocity cfg into the harness's task.

Rewards removed (train.py computes them on our RobotState; one hook term remains), our terrain
mixture, domain randomisation, resets and commands from train.py's options, observation noise off
(we build the observation), our termination set. The robot (Isaac Lab's UNITREE_GO2_CFG: its DC
motors, Newton actuators) and the physics (newton_mjwarp) stay Isaac Lab's.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import torch

from harness import config
from harness.config import EnvOptions
from harness.env_api import BackendError

# Isaac Lab 3.0's ids (isaaclab_tasks/core/velocity/config/go2/__init__.py); no -v0, no aliases
TASK_IDS = {
    "flat": "Isaac-Velocity-Flat-UnitreeGo2",
    "rough": "Isaac-Velocity-Rough-UnitreeGo2",
}
# The DR-style mixture without boxes and stairs, as the MuJoCo backend's.
ROUGH_SUB_TERRAINS = ("random_rough", "hf_pyramid_slope", "hf_pyramid_slope_inv")

ROBOT = "robot"                  # scene entity names used by the Go2 velocity cfg
CONTACT_SENSOR = "contact_forces"
HEIGHT_SCANNER = "height_scanner"
COMMAND = "base_velocity"
HOOK_TERM = "harness_transition"   # our single reward term (the transition hook)
FLIP_TERM = "harness_flipped"      # our extra termination term



class IsaacTerms(NamedTuple):
    """Isaac Lab classes/functions the cfg edit needs (real ones from isaaclab, fakes in tests)."""

    RewardTermCfg: Callable[..., Any]
    TerminationTermCfg: Callable[..., Any]
    EventTermCfg: Callable[..., Any]
    push_by_setting_velocity: Callable[..., Any]


def isaac_terms() -> IsaacTerms:
    """The real Isaac Lab terms (imports isaaclab)."""
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
    return env.scene[ROBOT].data.projected_gravity_b.torch[:, 2] > config.FLIP_GRAVITY_Z


def _term_names(group) -> list[str]:
    return [k for k in vars(group) if not k.startswith("_")]


def make_env_cfg(options: EnvOptions, *, seed: int, device: str, external_commands: bool, terms: IsaacTerms):
    """The registry's Go2 cfg for options.terrain (parse_env_cfg, 3.0's signature), edited by configure_env_cfg."""
    import isaaclab_tasks  # noqa: F401  (registers the Isaac-Velocity-* tasks with gymnasium)
    from isaaclab_tasks.utils import parse_env_cfg

    env_cfg = parse_env_cfg(TASK_IDS[options.terrain], device=device, num_envs=options.num_envs)
    return configure_env_cfg(env_cfg, options, seed=seed, device=device, external_commands=external_commands,
                             terms=terms)


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
            + "; use Isaac Lab 3.0.x"
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
        raise BackendError("the Isaac Lab rough Go2 cfg has no terrain generator; use Isaac Lab 3.0.x")
    missing = [k for k in ROUGH_SUB_TERRAINS if k not in gen.sub_terrains]
    if missing:
        raise BackendError(f"Isaac Lab's rough terrain lacks sub-terrains {missing}; use Isaac Lab 3.0.x")
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
    """Isaac Lab 3.0's Go2 events, brought to the harness's (the MuJoCo backend's) resets and DR.

    3.0 widened the task's randomisation: reset velocities of +-0.5, joints scaled by 0.5-1.5,
    a random base centre of mass, a log-uniform x0.8-1.25 base mass and pushes every 10-15 s, all
    on. Here a reset is the MuJoCo backend's (spawn +-0.5 m around the origin, any heading, at
    rest, the default pose); mass, friction and pushes come only from train.py's options.
    """
    ev = env_cfg.events
    ev.reset_base.params["velocity_range"] = {k: (0.0, 0.0) for k in ("x", "y", "z", "roll", "pitch", "yaw")}
    ev.reset_robot_joints.params["position_range"] = (1.0, 1.0)
    ev.reset_robot_joints.params["velocity_range"] = (0.0, 0.0)
    ev.base_com = None
    ev.base_external_force_torque = None
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
        ev.add_base_mass.params["operation"] = "add"           # kg on the trunk, as the MuJoCo backend
        ev.add_base_mass.params["distribution"] = "uniform"
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
        raise BackendError("the Isaac Lab Go2 cfg lacks its time_out/base_contact terminations; use Isaac Lab 3.0.x")
    t.base_contact.params["threshold"] = config.CONTACT_FORCE_THRESHOLD
    setattr(t, FLIP_TERM, terms.TerminationTermCfg(func=flipped_base, params={}))
