"""The Isaac Lab backend in the default environment: pre-flight, adapters, cfg edit and driver
against fakes that mirror Isaac Lab 3.0's attribute names, shapes and step order
(tests/isaaclab_fakes.py). tests/test_isaaclab_real.py runs the same adapter on the real package."""

from __future__ import annotations

import importlib.util
import math
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import isaaclab_fakes as fk  # noqa: E402

from harness import artifact, backends, config, scoring  # noqa: E402
from harness.isaaclab import boot, read_state, self_check, task_config  # noqa: E402
from harness.isaaclab import env as ienv  # noqa: E402
from harness.env_api import BackendError  # noqa: E402
from harness.config import EnvOptions, OptionError  # noqa: E402
from harness.panel import make_panel  # noqa: E402
from harness.rollout import panel_rollout  # noqa: E402
from harness.state import build_observation, obs_slices  # noqa: E402

CPU = torch.device("cpu")
SL = obs_slices()


@pytest.fixture(autouse=True)
def _one_thread_and_no_open_env():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: thread hand-offs cost more than the work
    yield
    torch.set_num_threads(threads)
    ienv.release_process()


def make(terrain="flat", n=4, external=False, seed=0, edit=None, **options):
    """The driver on a fake env built from the edited Go2 cfg; edit(cfg) runs after the harness's edit."""
    opts = EnvOptions(num_envs=n, terrain=terrain, **options)
    cfg = fk.make_go2_cfg(terrain)
    task_config.configure_env_cfg(cfg, opts, seed=seed, device="cpu", external_commands=external, terms=fk.fake_terms())
    if edit is not None:
        edit(cfg)
    fake = fk.FakeManagerBasedRLEnv(cfg, seed=seed)
    return ienv.IsaacLabQuadrupedEnv.from_isaac_env(fake, opts, seed=seed, external_commands=external), fake


# --- backend switch, installation, device pre-flight ----------------------------------------


@pytest.mark.skipif(importlib.util.find_spec("isaaclab") is not None, reason="Isaac Lab is installed here")
def test_backend_switch_without_isaaclab_says_what_to_install():
    calls = (
        lambda: backends.preflight("isaaclab", "cpu"),
        lambda: backends.start_backend("isaaclab", CPU),
        lambda: backends.make_env("isaaclab", EnvOptions(num_envs=2), seed=0, device=CPU),
    )
    for call in calls:
        with pytest.raises(BackendError) as err:
            call()
        msg = str(err.value)
        for needle in ("Isaac Lab 3.0", "Python 3.12", sys.executable, "uv sync --project harness/isaaclab",
                       "UV_PROJECT_ENVIRONMENT=$PWD/.venv-isaaclab", ".venv-isaaclab/bin/python train.py"):
            assert needle in msg, (needle, msg)
    assert "isaaclab" not in sys.modules


def test_install_check_names_each_missing_piece(monkeypatch):
    here = sys.version_info[:2]
    monkeypatch.setattr(boot, "PYTHON", here)                       # pretend this Python is the right one
    monkeypatch.setattr(boot, "missing_packages", lambda: ["isaaclab_newton", "warp"])
    with pytest.raises(BackendError, match=r"(?s)package\(s\) \['isaaclab_newton', 'warp'\].*uv sync"):
        boot.check_installed()
    monkeypatch.setattr(boot, "missing_packages", lambda: [])
    monkeypatch.setattr(boot, "isaaclab_version", lambda: "2.3.2.post1")
    with pytest.raises(BackendError, match="(?s)targets Isaac Lab 3.x.*2.3.2.post1"):
        boot.check_installed()
    monkeypatch.setattr(boot, "isaaclab_version", lambda: "3.0.0")
    monkeypatch.setattr(sys, "prefix", str(boot.ROOT / "harness" / "isaaclab" / ".venv"))
    with pytest.raises(BackendError, match="(?s)inside harness/.*rm -rf"):
        boot.check_installed()
    monkeypatch.setattr(sys, "prefix", str(boot.VENV))
    boot.check_installed()                                          # all present: no error


def test_device_preflight_driver_and_gpu():
    boot.check_device("cpu", driver=None, capability=None)          # Warp's CPU device needs neither
    with pytest.raises(BackendError, match="(?s)no NVIDIA driver.*580.65.*--device cpu"):
        boot.check_device("cuda", driver=None)
    with pytest.raises(BackendError, match="driver 570.86.15 is older than 580.65"):
        boot.check_device("cuda:0", driver=(570, 86, 15))
    with pytest.raises(BackendError, match="compute capability 7.0 is below 7.5"):
        boot.check_device("cuda", driver=(580, 65, 6), capability=(7, 0))
    boot.check_device("cuda", driver=(580, 65, 6), capability=(9, 0))
    boot.check_device("cuda", driver=(590, 1), capability=(7, 5))


def test_driver_version_reads_the_kernel_module_line(monkeypatch, tmp_path):
    line = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.65.06  Release Build  (dvs-builder@U16)\n"
    fake = tmp_path / "version"
    fake.write_text(line)
    real_path = boot.Path
    monkeypatch.setattr(boot, "Path", lambda p: fake if p == "/proc/driver/nvidia/version" else real_path(p))
    assert boot.driver_version() == (580, 65, 6)


def test_isaac_device_strings():
    assert boot.isaac_device(torch.device("cuda")) == "cuda:0"
    assert boot.isaac_device("cuda:1") == "cuda:1"
    assert boot.isaac_device(CPU) == "cpu"


def test_one_isaac_env_per_process():
    env, fake = make()
    with pytest.raises(BackendError, match="one environment per process"):
        ienv.IsaacLabQuadrupedEnv(EnvOptions(num_envs=2), device="cpu")
    env.close()
    assert fake.closed and ienv.open_env() is None
    with pytest.raises(RuntimeError, match="closed"):
        env.reset()


# --- joint order, bodies, state adapter ------------------------------------------------------


def test_joint_map_maps_isaac_type_major_order_to_ours_by_name():
    jm = read_state.resolve_joint_map(fk.ISAAC_JOINT_ORDER)
    assert jm.isaac_index.tolist() == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]
    isaac_ids = torch.arange(12)
    assert [fk.ISAAC_JOINT_ORDER[i] for i in jm.to_ours(isaac_ids)] == list(config.JOINT_NAMES)
    x = torch.randn(5, 12)
    assert torch.equal(jm.to_isaac(jm.to_ours(x)), x) and torch.equal(jm.to_ours(jm.to_isaac(x)), x)
    # any other articulation order resolves by name too
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(3)).tolist()
    names = [config.JOINT_NAMES[i] for i in perm]
    jm2 = read_state.resolve_joint_map(names)
    assert [names[i] for i in jm2.to_ours(torch.arange(12))] == list(config.JOINT_NAMES)
    for bad in (fk.ISAAC_JOINT_ORDER[:-1], (*fk.ISAAC_JOINT_ORDER[:-1], "FL_hip_joint"), (*fk.ISAAC_JOINT_ORDER, "x")):
        with pytest.raises(BackendError, match="expected Go2 joints"):
            read_state.resolve_joint_map(bad)


def test_bodies_are_resolved_by_name_in_any_order():
    for names in (fk.GO2_BODY_NAMES, tuple(reversed(fk.GO2_BODY_NAMES))):
        robot, contact = fk.FakeArticulation(2, body_names=names), fk.FakeContactSensor(2, body_names=names)
        b = read_state.resolve_bodies(robot, contact)
        assert [names[i] for i in b.foot_bodies] == list(config.FOOT_NAMES)
        assert [names[i] for i in b.foot_sensor] == list(config.FOOT_NAMES)
        assert [names[i] for i in b.thigh_sensor] == ["FL_thigh", "FR_thigh", "RL_thigh", "RR_thigh"]
        assert [names[i] for i in b.base_sensor] == ["base"]
    no_foot = tuple(n for n in fk.GO2_BODY_NAMES if n != "RR_foot")
    with pytest.raises(BackendError, match="RR_foot"):
        read_state.resolve_bodies(fk.FakeArticulation(2, body_names=no_foot), fk.FakeContactSensor(2))


def _isaac_shaped_scene(n=3):
    robot, contact = fk.FakeArticulation(n), fk.FakeContactSensor(n)
    d, c, names = robot.data, contact.data, fk.GO2_BODY_NAMES
    g = torch.Generator().manual_seed(0)
    # root velocities are set in the world frame (PhysX's state); the base-frame ones derive from it
    for t in (d.joint_pos.torch, d.joint_vel.torch, d.joint_acc.torch, robot.actuators.applied_effort.torch, d.root_com_vel_w.torch,
              d.body_lin_vel_w.torch, c.current_air_time.torch, c.last_air_time.torch, c.last_contact_time.torch):
        t.copy_(torch.rand(t.shape, generator=g))
    d.root_pos_w.torch[:] = torch.tensor([1.0, 2.0, 0.31])
    d.root_quat_w.torch[:] = torch.tensor([math.sin(0.2), 0.0, 0.0, math.cos(0.2)])  # rolled 0.4 rad (x y z w)
    foot = [names.index(f) for f in config.FOOT_NAMES]
    d.body_pos_w.torch[:, foot, 2] = torch.tensor([0.02, 0.05, 0.08, 0.11])
    hist = c.net_normal_forces_w_history.torch
    hist[:, 0, names.index("FL_foot"), 2] = 30.0       # feet: latest substep only
    hist[:, 2, names.index("FR_foot"), 2] = 30.0       # an older substep: not "in contact now"
    hist[:, 2, names.index("base"), 0] = 5.0           # trunk: any substep of the step counts
    hist[:, 1, names.index("RL_thigh"), 1] = -2.0
    hist[:, 0, names.index("FR_thigh"), 2] = 0.5       # below the 1 N threshold
    c.current_contact_time.torch[:, foot] = torch.tensor([0.005, 0.5, 0.0, 0.0])
    return robot, contact, foot


def test_state_adapter_reads_isaac_buffers_into_our_order():
    robot, contact, foot = _isaac_shaped_scene()
    d, c = robot.data, contact.data
    jm, bodies = read_state.resolve_joint_map(robot.joint_names), read_state.resolve_bodies(robot, contact)
    acts, last = torch.randn(3, 12), torch.randn(3, 12)
    s = read_state.read_robot_state(robot, contact, jm, bodies, commands=torch.ones(3, 3), actions=acts, last_actions=last,
                            episode_step=torch.tensor([1, 2, 3]), terrain_level=torch.zeros(3, dtype=torch.long),
                            step_dt=0.02)
    for ours, isaac in (("joint_pos", "joint_pos"), ("joint_vel", "joint_vel"), ("joint_acc", "joint_acc"),
                        ("torques", "applied_torque"), ("default_joint_pos", "default_joint_pos")):
        src = robot.actuators.applied_effort if isaac == "applied_torque" else getattr(d, isaac)
        for k, name in enumerate(config.JOINT_NAMES):
            assert torch.equal(getattr(s, ours)[:, k], src.torch[:, fk.ISAAC_JOINT_ORDER.index(name)])
    assert torch.allclose(s.default_joint_pos[0], torch.tensor(config.DEFAULT_JOINT_POS))
    assert torch.equal(s.base_lin_vel, d.root_lin_vel_b.torch) and torch.equal(s.base_ang_vel, d.root_ang_vel_b.torch)
    assert not torch.allclose(s.base_lin_vel, d.root_lin_vel_w.torch)        # base frame, not PhysX's world frame
    assert torch.allclose(s.projected_gravity[0], torch.tensor([0.0, -math.sin(0.4), -math.cos(0.4)]), atol=1e-6)
    assert torch.allclose(s.base_height, torch.full((3,), 0.31))
    assert torch.allclose(s.foot_height[0], torch.tensor([0.02, 0.05, 0.08, 0.11]))
    assert torch.equal(s.foot_vel, d.body_lin_vel_w.torch[:, foot])
    assert s.foot_contact[0].tolist() == [True, False, False, False]
    assert torch.allclose(s.foot_contact_force[0], torch.tensor([30.0, 0.0, 0.0, 0.0]))
    assert s.trunk_contact.tolist() == [True] * 3
    assert s.undesired_contact[0].tolist() == [False, False, True, False]
    assert s.foot_first_contact[0].tolist() == [True, False, False, False]
    for ours, isaac in (("foot_air_time", "current_air_time"), ("foot_last_air_time", "last_air_time"),
                        ("foot_contact_time", "current_contact_time"),
                        ("foot_last_contact_time", "last_contact_time")):
        assert torch.equal(getattr(s, ours), getattr(c, isaac).torch[:, foot])
    assert torch.equal(s.actions, acts) and torch.equal(s.last_actions, last)
    assert s.episode_step.tolist() == [1, 2, 3] and s.dt == 0.02
    # copies, not views: a later Isaac update must not rewrite a stored transition
    before = s.joint_pos.clone()
    d.joint_pos.torch.add_(1.0)
    assert torch.equal(s.joint_pos, before)


def test_ground_height_uses_nearest_scan_hit_and_ignores_misses():
    hits = torch.tensor([[[0.0, 0.0, 0.1], [1.0, 0.0, 0.5], [0.5, 0.0, float("inf")]]])
    points = torch.tensor([[[0.1, 0.0, 0.3], [0.9, 0.1, 0.3], [0.55, 0.0, 0.3]]])
    assert torch.allclose(read_state.ground_height(points, hits), torch.tensor([[0.1, 0.5, 0.5]]))
    assert torch.equal(read_state.ground_height(points, None), torch.zeros(1, 3))


# --- the cfg edit ------------------------------------------------------------------------


def _configured(terrain="rough", external=False, **options):
    cfg = fk.make_go2_cfg(terrain)
    opts = EnvOptions(num_envs=64, terrain=terrain, **options)
    return task_config.configure_env_cfg(cfg, opts, seed=7, device="cuda:0", external_commands=external,
                                terms=fk.fake_terms()), opts


def test_cfg_rough_task_with_our_terrain_rewards_terminations_commands():
    cfg, opts = _configured("rough", initial_terrain_level=3, resample_seconds=8.0, standing_fraction=0.1,
                            lin_vel_x=(-0.5, 1.5))
    assert (cfg.seed, cfg.sim.device, cfg.scene.num_envs) == (7, "cuda:0", 64)
    gen = cfg.scene.terrain.terrain_generator
    assert tuple(gen.sub_terrains) == task_config.ROUGH_SUB_TERRAINS          # no boxes, no stairs
    assert gen.curriculum is True and gen.num_rows == config.TERRAIN_LEVELS and gen.seed == 7
    assert cfg.scene.terrain.max_init_terrain_level == 3
    assert cfg.scene.height_scanner is not None                       # kept: terrain height for the state
    rewards = {k: v for k, v in vars(cfg.rewards).items() if v is not None}
    assert list(rewards) == [task_config.HOOK_TERM]
    assert rewards[task_config.HOOK_TERM].func is task_config.transition_hook and rewards[task_config.HOOK_TERM].weight == 1.0
    terms = {k: v for k, v in vars(cfg.terminations).items() if v is not None}
    assert set(terms) == {"time_out", "base_contact", task_config.FLIP_TERM}
    assert terms[task_config.FLIP_TERM].func is task_config.flipped_base and terms["base_contact"].params["threshold"] == 1.0
    assert all(v is None for v in vars(cfg.curriculum).values())
    cmd = cfg.commands.base_velocity
    assert cmd.heading_command is False and cmd.rel_heading_envs == 0.0 and cmd.ranges.heading is None
    assert (cmd.ranges.lin_vel_x, cmd.ranges.lin_vel_y, cmd.ranges.ang_vel_z) == ((-0.5, 1.5), (-1.0, 1.0), (-1.0, 1.0))
    assert cmd.resampling_time_range == (8.0, 8.0) and cmd.rel_standing_envs == 0.1 and cmd.debug_vis is False
    pol = cfg.observations.policy
    assert pol.enable_corruption is False and pol.height_scan is None
    ev = cfg.events                                                   # defaults: no DR beyond Isaac's friction
    assert ev.add_base_mass is None and ev.push_robot is None
    assert ev.physics_material.params["static_friction_range"] == (0.8, 0.8)


def test_cfg_domain_randomisation_options():
    cfg, _ = _configured("flat", friction_range=(0.5, 1.2), added_mass_range=(-0.5, 2.0),
                         push_interval_seconds=8.0, push_velocity=0.7)
    p = cfg.events.physics_material.params
    assert p["static_friction_range"] == p["dynamic_friction_range"] == (0.5, 1.2) and p["make_consistent"]
    assert cfg.events.add_base_mass.params["mass_distribution_params"] == (-0.5, 2.0)
    push = cfg.events.push_robot
    assert push.func is fk.push_by_setting_velocity and push.mode == "interval"
    assert push.interval_range_s == (8.0, 8.0)
    assert push.params["velocity_range"] == {"x": (-0.7, 0.7), "y": (-0.7, 0.7)}


def test_cfg_flat_and_external_commands():
    cfg, _ = _configured("flat", external=True)
    t = cfg.scene.terrain
    assert t.terrain_type == "plane" and t.terrain_generator is None and cfg.scene.height_scanner is None
    cmd = cfg.commands.base_velocity
    assert cmd.resampling_time_range == (config.EPISODE_SECONDS,) * 2 and cmd.rel_standing_envs == 0.0


def test_unset_reward_weight_or_event_mode_fails_like_isaac_configclass():
    """Isaac Lab's RewardTermCfg.weight and EventTermCfg.mode are MISSING: a term that leaves them
    unset constructs, but validate() -- which ManagerBasedEnv.__init__ runs on the whole cfg -- raises."""
    hook = fk.RewardTermCfg(func=task_config.transition_hook)
    push = fk.EventTermCfg(func=fk.push_by_setting_velocity, interval_range_s=(2.0, 2.0),
                           params={"velocity_range": {"x": (-0.5, 0.5)}})
    for term, name in ((hook, "weight"), (push, "mode")):
        expected = f"Missing values detected in object {type(term).__name__} for the following fields:\n  - {name}\n"
        with pytest.raises(TypeError, match=re.escape(expected)):
            term.validate()
    assert fk.RewardTermCfg(func=task_config.transition_hook, weight=0.0).validate() == []
    for group, name, term, missing in (("rewards", task_config.HOOK_TERM, hook, "weight"),
                                       ("events", "push_robot", push, "mode")):
        cfg = fk.make_go2_cfg("flat")
        task_config.configure_env_cfg(cfg, EnvOptions(num_envs=2), seed=0, device="cpu", external_commands=False,
                                      terms=fk.fake_terms())
        setattr(getattr(cfg, group), name, term)
        with pytest.raises(TypeError, match=re.escape(f"UnitreeGo2FlatEnvCfg for the following fields:\n"
                                                      f"  - {group}.{name}.{missing}\n")):
            fk.FakeManagerBasedRLEnv(cfg)
    # every term the harness adds is complete
    cfg, _ = _configured("rough", added_mass_range=(0.0, 1.0), push_interval_seconds=2.0)
    assert fk.validate_cfg(cfg) == []


def test_cfg_refuses_a_task_that_is_not_the_harness_simulation():
    cfg = fk.make_go2_cfg("flat")
    cfg.decimation = 2
    with pytest.raises(BackendError, match="decimation=2"):
        task_config.configure_env_cfg(cfg, EnvOptions(), seed=0, device="cpu", external_commands=False, terms=fk.fake_terms())


# --- the driver -----------------------------------------------------------------------------


def test_observation_layout_and_action_mapping():
    env, fake = make(n=4, obs_noise=False)
    obs0 = env.reset()
    assert obs0.shape == (4, 48) and torch.equal(obs0[:, SL["actions"]], torch.zeros(4, 12))
    actions = torch.randn(4, 12, generator=torch.Generator().manual_seed(1))
    obs, state, terminated, truncated, info = env.step(actions)
    d = fake.scene["robot"].data
    # the fake tracks targets perfectly: our joint k sits at default_k + 0.25 * action_k
    default = torch.tensor(config.DEFAULT_JOINT_POS)
    assert torch.allclose(state.joint_pos, default + config.ACTION_SCALE * actions, atol=1e-6)
    assert torch.allclose(obs[:, SL["joint_pos"]], config.ACTION_SCALE * actions, atol=1e-6)
    assert torch.equal(obs[:, SL["actions"]], actions)
    assert torch.equal(obs[:, SL["base_lin_vel"]], d.root_lin_vel_b.torch)
    assert torch.allclose(obs[:, SL["projected_gravity"]], d.projected_gravity_b.torch)
    assert torch.equal(obs[:, SL["velocity_commands"]], env.commands)
    assert torch.equal(obs, build_observation(state, noise=False)) or bool(info["episode_length"].any())
    assert obs.shape == (4, env.obs_dim) and env.action_dim == 12 and env.max_episode_length == 1000
    assert not terminated.any() and not truncated.any() and info["unstable"] == 0

    noisy, _ = make(n=4, obs_noise=True)
    noisy.reset()
    obs_n, state_n, *_ = noisy.step(actions)
    diff = obs_n - build_observation(state_n, noise=False)
    for name, size, scale in config.OBS_LAYOUT:
        part = diff[:, SL[name]].abs()
        assert part.max() <= scale + 1e-6 and (scale == 0.0 or part.max() > 0.0), name


def test_reset_with_yaw_and_step_checks():
    env, fake = make(n=3, obs_noise=False)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(torch.zeros(3, 12))
    yaw = torch.tensor([0.5, -2.0, 3.0])
    obs = env.reset(yaw=yaw)
    assert torch.allclose(fk.yaw_of(fake.scene["robot"].data.root_quat_w.torch), yaw, atol=1e-6)
    assert torch.allclose(obs[:, SL["projected_gravity"]], torch.tensor([0.0, 0.0, -1.0]).expand(3, 3), atol=1e-6)
    assert fake.sim.forward_calls >= 2
    with pytest.raises(ValueError, match="yaw"):
        env.reset(yaw=torch.zeros(2))
    for bad in (torch.zeros(3, 11), torch.zeros(3, 12, dtype=torch.long), torch.full((3, 12), float("nan")), [[0.0] * 12] * 3):
        with pytest.raises(ValueError, match="actions"):
            env.step(bad)
    _, state, *_ = env.step(torch.full((3, 12), 1e6))
    assert torch.equal(state.actions, torch.full((3, 12), config.ACTION_CLIP))


def test_panel_commands_are_injected_and_survive_isaac_resampling_and_resets():
    env, fake = make(n=4, external=True)
    panel = make_panel(episodes=4)
    env.reset(yaw=panel.start_yaw)
    fake.base_contact_at = {100: [2]}
    act = torch.zeros(4, 12)
    for step in range(panel.segment_steps + 10):              # crosses a 5 s segment boundary
        cmd = panel.command_at(step)
        env.set_commands(cmd)
        _, state, terminated, _, _ = env.step(act)
        assert torch.equal(state.commands, cmd), step         # the command the policy acted on
        assert torch.equal(env.commands, cmd), step           # still in force after Isaac's reset/resample
        if step + 1 == 100:
            assert terminated.tolist() == [False, False, True, False]
    with pytest.raises(ValueError, match="commands"):
        env.set_commands(torch.zeros(3, 3))
    env.set_commands(torch.ones(2, 3), env_ids=torch.tensor([0, 3]))
    assert env.commands[:, 0].tolist() == [1.0, cmd[1, 0].item(), cmd[2, 0].item(), 1.0]


def test_training_commands_follow_options_and_ranges_can_change():
    env, fake = make(n=64, lin_vel_x=(0.5, 0.5), lin_vel_y=(0.0, 0.0), ang_vel_z=(-0.2, -0.2), standing_fraction=0.0)
    env.reset()
    assert torch.allclose(env.commands, torch.tensor([0.5, 0.0, -0.2]).expand(64, 3))
    env.set_command_ranges(lin_vel_x=(-1.5, -1.5))
    assert fake.command_manager.get_term("base_velocity").cfg.ranges.lin_vel_x == (-1.5, -1.5)
    env.reset()
    assert torch.allclose(env.commands[:, 0], torch.full((64,), -1.5))
    with pytest.raises(OptionError):
        env.set_command_ranges(lin_vel_x=(-3.0, 0.0))
    with pytest.raises(OptionError, match="unknown"):
        env.set_command_ranges(heading=(0.0, 1.0))


def test_failure_ends_an_episode_and_obs_starts_the_next():
    env, fake = make(n=3)
    env.reset()
    fake.base_contact_at = {5: [1]}
    acts = torch.full((3, 12), 0.2)
    for _ in range(5):
        obs, state, terminated, truncated, info = env.step(acts)
    assert terminated.tolist() == [False, True, False] and not truncated.any()
    assert info["episode_length"].tolist() == [0, 5, 0]
    assert state.trunk_contact.tolist() == [False, True, False]       # the transition, before reset
    assert state.episode_step.tolist() == [5, 5, 5]
    assert torch.equal(obs[1, SL["actions"]], torch.zeros(12))          # a new episode's first obs
    assert torch.equal(obs[0, SL["actions"]], acts[0])
    assert fake.episode_length_buf.tolist() == [5, 0, 5]
    assert "Metrics/base_velocity/error_vel_xy" in info["isaac_log"]
    _, state, *_ = env.step(acts)
    assert torch.equal(state.last_actions[1], torch.zeros(12)) and torch.equal(state.last_actions[0], acts[0])


def test_flipped_base_terminates_and_nan_envs_are_reset_as_unstable():
    env, fake = make(n=3)
    env.reset()
    fake.nan_at = {3: [2]}
    for _ in range(3):
        _, state, terminated, _, info = env.step(torch.zeros(3, 12))
    assert info["unstable"] == 1 and terminated.tolist() == [False, False, True]
    assert all(torch.isfinite(getattr(state, k)).all() for k in ("joint_vel", "joint_pos", "base_lin_vel"))
    assert fake.episode_length_buf[2] == 0
    d = fake.scene["robot"].data
    d.root_quat_w.torch[0] = torch.tensor([1.0, 0.0, 0.0, 0.0])            # upside down (x y z w)
    assert task_config.flipped_base(fake).tolist() == [True, False, False]


def test_rough_terrain_levels_heights_and_pending_level_changes():
    env, fake = make("rough", n=8, initial_terrain_level=2)
    terrain = fake.scene.terrain
    env.reset()
    assert env.terrain_levels.tolist() == [2] * 8
    assert torch.equal(terrain.env_origins, terrain.terrain_origins[terrain.terrain_levels, terrain.terrain_types])
    _, state, *_ = env.step(torch.zeros(8, 12))
    assert torch.allclose(state.base_height, torch.full((8,), 0.3), atol=3e-3)
    d = fake.scene["robot"].data
    feet = d.body_pos_w.torch[:, fake._foot_ids]
    true_height = feet[..., 2] - fake.ground(feet[..., 0], feet[..., 1])
    assert torch.allclose(state.foot_height, true_height, atol=3e-3)
    assert state.terrain_level.tolist() == [2] * 8

    env.set_terrain_levels(torch.tensor([0, 1, 2, 3, 4, 5, 6, 42]))
    assert env.terrain_levels.tolist() == [2] * 8                       # applied at each env's next reset
    fake.base_contact_at = {fake.common_step_counter + 1: [3, 7]}
    env.step(torch.zeros(8, 12))
    assert env.terrain_levels.tolist() == [2, 2, 2, 3, 2, 2, 2, config.TERRAIN_LEVELS - 1]
    assert torch.equal(terrain.terrain_levels, env.terrain_levels)
    origin = terrain.terrain_origins[3, terrain.terrain_types[3]]
    assert torch.allclose(d.root_pos_w.torch[3, :2], origin[:2], atol=0.51)  # respawned on its new row
    with pytest.raises(ValueError, match="levels"):
        env.set_terrain_levels(torch.zeros(3))


def test_the_rough_panel_walks_each_episode_on_its_level_on_the_isaac_driver():
    panel = make_panel(episodes=config.TERRAIN_LEVELS, task="rough")
    env, fake = make("rough", n=panel.episodes, external=True, obs_noise=False)
    first = next(panel_rollout(lambda obs: torch.zeros(obs.shape[0], 12), env, panel, 1, torch.device("cpu")))
    terrain = fake.scene.terrain
    assert first.state.terrain_level.tolist() == panel.levels.tolist() == list(range(config.TERRAIN_LEVELS))
    assert torch.equal(terrain.terrain_levels, panel.levels)
    assert torch.equal(terrain.env_origins, terrain.terrain_origins[terrain.terrain_levels, terrain.terrain_types])


# --- Isaac's event manager running what the cfg edit configures -------------------------------


def test_startup_events_run_once_when_the_env_is_made_not_at_resets():
    calls = []

    class CountedMass(fk.randomize_rigid_body_mass):
        def __call__(self, env, env_ids, **params):
            calls.append(env_ids)
            super().__call__(env, env_ids, **params)

    def count_mass_calls(cfg):
        cfg.events.add_base_mass.func = CountedMass

    env, fake = make(n=4, friction_range=(0.5, 1.2), added_mass_range=(-0.5, 2.0), edit=count_mass_calls)
    robot = fake.scene["robot"]
    view = robot.root_view
    assert calls == [None]                               # once, for every env, while the env is made
    materials = view.get_material_properties()
    static, dynamic, restitution = materials.unbind(-1)
    assert ((static >= 0.5) & (static <= 1.2)).all() and static.unique().numel() > 1
    assert (dynamic <= static).all() and (restitution == 0.0).all()      # make_consistent
    masses = robot.data.body_mass.torch.clone()
    added = masses - torch.tensor([[fk._toy_mass(b) for b in robot.body_names]])
    base = robot.body_names.index("base")
    assert ((added[:, base] >= -0.5) & (added[:, base] <= 2.0)).all() and added[:, base].unique().numel() == 4
    assert (torch.cat((added[:, :base], added[:, base + 1:]), dim=1) == 0.0).all()   # the trunk only
    env.reset()
    fake.base_contact_at = {2: [1], 4: [0, 3]}
    for _ in range(5):
        env.step(torch.zeros(4, 12))
    assert calls == [None]
    assert torch.equal(robot.data.body_mass.torch, masses) and torch.equal(view.get_material_properties(), materials)

    _, plain = make(n=2)                                 # no DR options: Isaac's fixed friction, no added mass
    view = plain.scene["robot"].root_view
    assert torch.allclose(view.get_material_properties()[..., :2], torch.tensor([0.8, 0.6]))
    assert torch.equal(plain.scene["robot"].data.body_mass.torch,
                       torch.tensor([[fk._toy_mass(b) for b in fk.GO2_BODY_NAMES]] * 2))
    assert plain.event_manager.active_terms["startup"] == ["physics_material"]


def test_reset_events_reset_only_the_envs_being_reset():
    calls = []

    def recorded_reset_base(env, env_ids, **params):
        calls.append(env_ids.tolist())
        fk.reset_root_state_uniform(env, env_ids, **params)

    def record_reset_base(cfg):
        cfg.events.reset_base.func = recorded_reset_base

    env, fake = make(n=3, obs_noise=False, edit=record_reset_base)
    assert calls == []                                   # making the env resets nothing
    env.reset()
    assert calls == [[0, 1, 2]]
    robot = fake.scene["robot"]
    d = robot.data
    act = torch.full((3, 12), 0.2)
    env.step(act)
    robot.write_root_velocity_to_sim_index(root_velocity=torch.tensor([[1.0, -0.5, 0.2, 0.3, -0.1, 0.4]]).repeat(3, 1))
    yaw_before = fk.yaw_of(d.root_quat_w.torch)
    fake.base_contact_at = {2: [1]}
    obs, _, terminated, _, _ = env.step(act)             # env 1's trunk touches: Isaac resets it in this step
    assert terminated.tolist() == [False, True, False] and calls == [[0, 1, 2], [1]]
    # env 1: Go2's spawn pose around its origin, at rest, default joints (reset_base, reset_robot_joints)
    origin = fake.scene.env_origins[1]
    assert (d.root_pos_w.torch[1, :2] - origin[:2]).abs().max() <= 0.5
    assert torch.isclose(d.root_pos_w.torch[1, 2], origin[2] + fk.GO2_INIT_POS[2])
    assert abs(float(fk.yaw_of(d.root_quat_w.torch)[1] - yaw_before[1])) > 1e-4
    assert torch.equal(d.root_com_vel_w.torch[1], torch.zeros(6))
    assert torch.equal(obs[1, SL["base_lin_vel"]], torch.zeros(3))
    assert torch.equal(d.joint_pos.torch[1], d.default_joint_pos.torch[1]) and torch.equal(d.joint_vel.torch[1], torch.zeros(12))
    for e in (0, 2):                                     # untouched by the reset events
        assert torch.isclose(fk.yaw_of(d.root_quat_w.torch)[e], yaw_before[e])
        assert d.root_com_vel_w.torch[e].abs().min() > 0.0
        assert not torch.allclose(d.joint_pos.torch[e], d.default_joint_pos.torch[e])


def _record_pushes(log: list):
    """An edit that wraps push_robot's func, logging each call's step, env ids and velocity change."""
    def recorded_push(env, env_ids, **params):
        d = env.scene["robot"].data
        before_w, before_b = d.root_lin_vel_w.torch[env_ids].clone(), d.root_lin_vel_b.torch[env_ids].clone()
        fk.push_by_setting_velocity(env, env_ids, **params)
        after_w, after_b = d.root_lin_vel_w.torch[env_ids].clone(), d.root_lin_vel_b.torch[env_ids].clone()
        log.append(SimpleNamespace(step=env.common_step_counter, env_ids=env_ids.tolist(),
                                   dv_w=after_w - before_w, dv_b=after_b - before_b, after_b=after_b))

    def edit(cfg):
        cfg.events.push_robot.func = recorded_push
    return edit


def test_push_robot_fires_on_each_envs_own_interval_within_the_configured_velocity():
    pushes = []
    env, fake = make(n=4, push_interval_seconds=2.0, push_velocity=0.7, edit=_record_pushes(pushes))
    assert fake.event_manager.active_terms["interval"] == ["push_robot"]
    env.reset()
    fake.base_contact_at = {30: [1]}       # env 1's new episode at step 30 restarts its 2 s timer
    for _ in range(240):
        env.step(torch.zeros(4, 12))
    # float32 timers, as Isaac's: 2.0 - 100 x 0.02 is still above the 1e-6 threshold, so a push comes
    # every 101 steps; env 1's timer restarts in step 30 and counts that step too
    assert [(p.step, p.env_ids) for p in pushes] == [(101, [0, 2, 3]), (130, [1]), (202, [0, 2, 3]), (231, [1])]
    dv_w = torch.cat([p.dv_w for p in pushes])
    assert (dv_w[:, :2].abs() <= 0.7).all() and dv_w[:, :2].abs().max() > 0.1
    assert torch.equal(dv_w[:, 2], torch.zeros(len(dv_w)))      # planar pushes only


def test_push_adds_world_frame_velocity_to_a_yawed_robot():
    """Isaac's push adds the sampled velocity to root_vel_w (world frame). A one-sided range shows
    the frame: the same world-frame push reads turned in the base frame of a robot yawed 90 deg."""
    pushes = []

    def push_along_world_x(cfg):
        _record_pushes(pushes)(cfg)
        cfg.events.push_robot.params["velocity_range"] = {"x": (0.6, 0.6), "y": (0.0, 0.0)}

    env, fake = make(n=2, external=True, obs_noise=False, push_interval_seconds=2.0, edit=push_along_world_x)
    env.reset(yaw=torch.tensor([math.pi / 2, 0.0]))
    env.set_commands(torch.zeros(2, 3))
    for _ in range(101):                               # the first push comes in step 101 (see above)
        obs, *_ = env.step(torch.zeros(2, 12))
    (push,) = pushes
    assert push.step == 101 and push.env_ids == [0, 1]
    assert torch.allclose(push.dv_w, torch.tensor([[0.6, 0.0, 0.0], [0.6, 0.0, 0.0]]), atol=1e-6)
    assert torch.allclose(push.dv_b, torch.tensor([[0.0, -0.6, 0.0], [0.6, 0.0, 0.0]]), atol=1e-5)
    # the next observation carries the push, in the base frame
    assert torch.equal(obs[:, SL["base_lin_vel"]], push.after_b)


# --- the harness's own evaluation loop on the Isaac backend ----------------------------------


class _Recorder:
    """Forwards to the env and keeps what evaluation does not return (info, flags)."""

    def __init__(self, env):
        self.env, self.infos, self.terminated, self.truncated = env, [], [], []

    def __getattr__(self, name):
        return getattr(self.env, name)

    def step(self, actions):
        out = self.env.step(actions)
        self.infos.append(out[4])
        self.terminated.append(out[2].clone())
        self.truncated.append(out[3].clone())
        return out


class _TinyPolicy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(48, 12)
        torch.nn.init.normal_(self.lin.weight, std=0.05, generator=torch.Generator().manual_seed(5))
        torch.nn.init.zeros_(self.lin.bias)

    def forward(self, obs):
        return torch.tanh(self.lin(obs))


FALL_STEP, FALL_ENV = 400, 1


@pytest.fixture(scope="module")
def panel_run():
    """One full 20 s panel (4 episodes) through harness.scoring.evaluate_policy on the Isaac driver."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    made = {}

    def make_env(name, options, seed, device, external_commands=False):
        assert name == "isaaclab" and external_commands and options.terrain == config.DEFAULT_TASK
        assert options.obs_noise is False and seed == config.PANEL_SEED
        cfg = fk.make_go2_cfg(options.terrain)
        task_config.configure_env_cfg(cfg, options, seed=seed, device="cpu", external_commands=True, terms=fk.fake_terms())
        fake = fk.FakeManagerBasedRLEnv(cfg, seed=1)
        fake.base_contact_at = {FALL_STEP: [FALL_ENV]}
        made["fake"] = fake
        made["env"] = _Recorder(ienv.IsaacLabQuadrupedEnv.from_isaac_env(fake, options, seed, external_commands=True))
        return made["env"]

    mp = pytest.MonkeyPatch()
    mp.setattr(backends, "start_backend", lambda name, device: None)
    mp.setattr(backends, "make_env", make_env)
    mp.setattr(artifact, "load_policy", lambda path: _TinyPolicy().eval())
    try:
        metrics = scoring.evaluate_policy("unused.pt2", backend="isaaclab", device="cpu", episodes=4)
    finally:
        mp.undo()
        torch.set_num_threads(threads)
        ienv.release_process()
    return metrics, made["fake"], made["env"]


def test_harness_evaluation_runs_unchanged_on_the_isaac_driver(panel_run):
    metrics, fake, rec = panel_run
    assert metrics["backend"] == "isaaclab" and metrics["steps"] == config.EPISODE_STEPS
    assert metrics["survival"] == pytest.approx(0.75)
    assert fake.closed
    assert rec.terminated[FALL_STEP - 1].tolist() == [False, True, False, False]
    last = config.EPISODE_STEPS - 1                      # the 20 s time-out: truncation, not failure
    assert rec.truncated[last].tolist() == [True, False, True, True]
    assert not rec.terminated[last].any()
    assert rec.infos[last]["episode_length"].tolist() == [1000, 0, 1000, 1000]


def test_vel_err_from_isaac_buffers_equals_ours(panel_run):
    """Recompute vel_err from what Isaac held at each reward computation (vel_command_b and
    root_lin_vel_b, Isaac's own order and names), charging ||cmd|| after the fall."""
    metrics, fake, _ = panel_run
    alive = torch.ones(4, dtype=torch.bool)
    total = torch.zeros((), dtype=torch.float64)
    for step, (cmd, vel) in enumerate(fake.log_isaac):
        err = torch.where(alive, (cmd[:, :2] - vel[:, :2]).norm(dim=-1), cmd[:, :2].norm(dim=-1))
        total += err.double().sum()
        if step + 1 == FALL_STEP:
            alive[FALL_ENV] = False
    assert len(fake.log_isaac) == config.EPISODE_STEPS
    assert metrics["vel_err"] == pytest.approx(float(total) / (4 * config.EPISODE_STEPS), rel=1e-5)
    assert metrics["standing_still"] > 0.0


def test_isaac_error_vel_xy_is_reported_next_to_ours(panel_run):
    """Isaac Lab 3.0's Metrics/base_velocity/error_vel_xy: the episode mean of its per-step error,
    finalised at the env's reset, logged as the mean over the envs that reset (info["isaac_log"]).
    A full episode gives (almost) our mean; a fall stops Isaac's episode, ours keeps charging ||cmd||."""
    _, fake, rec = panel_run
    errs = torch.stack([(c[:, :2] - v[:, :2]).norm(dim=-1) for c, v in fake.log_isaac])   # (T, 4)
    speeds = torch.stack([c[:, :2].norm(dim=-1) for c, _ in fake.log_isaac])
    bound = 2 * errs.max() / config.EPISODE_STEPS        # Isaac counts the post-step state of its own step order
    isaac_full = rec.infos[-1]["isaac_log"]["Metrics/base_velocity/error_vel_xy"]       # envs 0, 2, 3 time out
    ours_full = errs[:, [0, 2, 3]].mean()
    assert abs(isaac_full - float(ours_full)) <= float(bound) and isaac_full > 0
    isaac_fallen = rec.infos[FALL_STEP - 1]["isaac_log"]["Metrics/base_velocity/error_vel_xy"]   # env 1 alone
    ours_fallen = (errs[:FALL_STEP, FALL_ENV].sum() + speeds[FALL_STEP:, FALL_ENV].sum()) / config.EPISODE_STEPS
    assert abs(isaac_fallen - float(errs[:FALL_STEP, FALL_ENV].mean())) <= float(bound) * 10
    assert isaac_fallen < ours_fallen
    assert "isaac_error_vel_xy" not in rec.infos[-1]          # 3.0 keeps no per-env value after the reset


def test_env_construction_leaves_train_py_rng_streams_alone():
    import random

    import numpy as np

    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    expected = (random.random(), float(np.random.rand()), float(torch.rand(())))
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    with ienv.keep_global_rng():
        random.seed(99), np.random.seed(99), torch.manual_seed(99)   # what Isaac's configure_seed does
        torch.backends.cudnn.benchmark = not torch.backends.cudnn.benchmark
        benchmark_inside = torch.backends.cudnn.benchmark
    assert (random.random(), float(np.random.rand()), float(torch.rand(()))) == expected
    assert torch.backends.cudnn.benchmark != benchmark_inside


def test_unmodified_train_py_trains_on_the_isaac_driver(monkeypatch):
    """train.py's train(ctx) against the Isaac driver (fake physics): every RobotState field it
    reads for its rewards is there, and it returns a (B, 48) -> (B, 12) policy."""
    import train
    from harness.context import TrainContext

    def make_env(name, options, seed, device, external_commands=False):
        assert name == "isaaclab" and not external_commands
        cfg = fk.make_go2_cfg(options.terrain)
        task_config.configure_env_cfg(cfg, options, seed=seed, device="cpu", external_commands=False, terms=fk.fake_terms())
        return ienv.IsaacLabQuadrupedEnv.from_isaac_env(fk.FakeManagerBasedRLEnv(cfg, seed=seed), options, seed)

    monkeypatch.setattr(backends, "make_env", make_env)
    ctx = TrainContext(seed=1, device=CPU, backend="isaaclab", budget_s=60.0, smoke=True)
    ctx.start_clock()
    logged, log = [], ctx.log
    ctx.log = lambda env_steps, **scalars: (logged.append(scalars), log(env_steps, **scalars))
    ctx.time_up = lambda: len(logged) >= 1             # one training iteration, whatever the machine load
    policy = train.train(ctx)
    assert ctx.env_steps() > 0 and math.isfinite(logged[0]["vel_err"])
    with torch.no_grad():
        out = policy(torch.zeros(5, config.OBS_DIM))
    assert out.shape == (5, config.NUM_JOINTS) and torch.isfinite(out).all()



def test_self_check_cli_prints_one_parsable_line_or_says_what_is_missing(monkeypatch, capsys):
    import json

    monkeypatch.setattr(self_check, "self_check", lambda *a: {"terrain": a[0], "num_envs": a[1]})
    assert self_check.main(["--terrain", "rough", "--num-envs", "8"]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(self_check.SELF_CHECK_MARK)]
    assert json.loads(line[0][len(self_check.SELF_CHECK_MARK):]) == {"terrain": "rough", "num_envs": 8}

    def fail(*a):
        raise BackendError("isaaclab missing")

    monkeypatch.setattr(self_check, "self_check", fail)
    assert self_check.main([]) == 2 and "isaaclab missing" in capsys.readouterr().err


# The real Isaac Lab 3.0 (kit-less, Newton; CPU here, cuda where there is one): tests/test_isaaclab_real.py
