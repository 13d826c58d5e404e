"""The batched MuJoCo environment: standing, API, bookkeeping, resets, terminations, faults.

The contract tests run on both steppers (the `stepper` fixture): C MuJoCo, and MuJoCo Warp on
Warp's CPU device, which is the GPU code without a GPU (its first use compiles kernels, about a
minute, then cached in ~/.cache/warp)."""

import importlib.util
import math

import numpy as np
import pytest
import torch

from harness import config
from harness.config import EnvOptions, OptionError
from harness.mujoco.env import MujocoQuadrupedEnv
from harness.state import obs_slices

ZERO = torch.zeros
HAVE_WARP = importlib.util.find_spec("mujoco_warp") is not None


@pytest.fixture(params=["mujoco", pytest.param("warp", marks=pytest.mark.skipif(
    not HAVE_WARP, reason="mujoco-warp is not installed (it needs Python >= 3.11)"))])
def stepper(request):
    return request.param


def make(num_envs=4, seed=0, stepper="mujoco", **kw):
    env_kw = {k: kw.pop(k) for k in ("episode_steps", "external_commands", "nthread") if k in kw}
    return MujocoQuadrupedEnv(EnvOptions(num_envs=num_envs, **kw), seed=seed, stepper=stepper, **env_kw)


def run_zero(env, steps):
    out = None
    for _ in range(steps):
        out = env.step(ZERO(env.num_envs, 12))
    return out


def test_stands_ten_seconds_at_default_pose(stepper):
    env = make(stepper=stepper, num_envs=4)
    env.reset()
    heights, any_done = [], False
    for _ in range(500):  # 10 s
        _, state, term, trunc, info = env.step(ZERO(4, 12))
        heights.append(state.base_height.clone())
        any_done |= bool(term.any() or trunc.any())
        assert info["unstable"] == 0
    h = torch.stack(heights[50:])  # after settling from the drop
    assert not any_done
    assert 0.25 < float(h.min()) and float(h.max()) < 0.35
    assert state.foot_contact.all()
    assert state.projected_gravity[:, 2].max() < -0.99


def test_observation_layout_and_noise_switch(stepper):
    env = make(stepper=stepper, num_envs=3, obs_noise=False)
    obs = env.reset()
    assert obs.shape == (3, config.OBS_DIM) and obs.dtype == torch.float32
    actions = torch.full((3, 12), 0.3)
    obs, state, *_ = env.step(actions)
    sl = obs_slices()
    torch.testing.assert_close(obs[:, sl["base_lin_vel"]], state.base_lin_vel)
    torch.testing.assert_close(obs[:, sl["base_ang_vel"]], state.base_ang_vel)
    torch.testing.assert_close(obs[:, sl["projected_gravity"]], state.projected_gravity)
    torch.testing.assert_close(obs[:, sl["velocity_commands"]], state.commands)
    torch.testing.assert_close(obs[:, sl["joint_pos"]], state.joint_pos - state.default_joint_pos)
    torch.testing.assert_close(obs[:, sl["joint_vel"]], state.joint_vel)
    torch.testing.assert_close(obs[:, sl["actions"]], actions)

    noisy = make(stepper=stepper, num_envs=3, obs_noise=True)
    noisy.reset()
    obs_n, state_n, *_ = noisy.step(actions)
    diff = (obs_n[:, sl["joint_vel"]] - state_n.joint_vel).abs()
    assert 0 < float(diff.max()) <= 1.5 + 1e-5   # joint_vel noise half-width
    torch.testing.assert_close(obs_n[:, sl["actions"]], actions)  # no noise on actions


def test_state_is_complete_and_body_frame(stepper):
    env = make(stepper=stepper, num_envs=2, obs_noise=False)
    env.reset(yaw=torch.tensor([0.0, math.pi / 2]))
    _, state, *_ = run_zero(env, 5)
    n = 2
    shapes = {
        "base_lin_vel": (n, 3), "base_ang_vel": (n, 3), "projected_gravity": (n, 3), "base_height": (n,),
        "joint_pos": (n, 12), "default_joint_pos": (n, 12), "joint_vel": (n, 12), "joint_acc": (n, 12),
        "torques": (n, 12), "actions": (n, 12), "last_actions": (n, 12), "commands": (n, 3),
        "foot_contact": (n, 4), "foot_contact_force": (n, 4), "foot_air_time": (n, 4),
        "foot_last_air_time": (n, 4), "foot_contact_time": (n, 4), "foot_last_contact_time": (n, 4),
        "foot_first_contact": (n, 4), "foot_vel": (n, 4, 3), "foot_height": (n, 4),
        "undesired_contact": (n, 4), "trunk_contact": (n,), "episode_step": (n,), "terrain_level": (n,),
    }
    for name, shape in shapes.items():
        assert tuple(getattr(state, name).shape) == shape, name
    # a world-frame push along +x reads as +x in env 0's body frame and -y in env 1's (yawed +90 deg)
    qvel = env.qvel
    qvel[:, 0] = 1.0
    env.set_sim_state([0, 1], qvel=qvel)
    _, state, *_ = env.step(ZERO(2, 12))
    assert state.base_lin_vel[0, 0] > 0.5 and abs(float(state.base_lin_vel[0, 1])) < 0.2
    assert state.base_lin_vel[1, 1] < -0.5 and abs(float(state.base_lin_vel[1, 0])) < 0.2
    assert (state.torques.abs() <= config.TORQUE_LIMIT + 1e-4).all()


def test_joint_acc_is_the_last_physics_substep(stepper):
    """joint_acc is differenced over one physics step (as Isaac Lab's), not over the policy step."""
    actions = torch.tensor([[1.0] * 12, [-1.0] * 12])
    envs = []
    for _ in range(2):  # twins: same seed, same steps
        env = make(stepper=stepper, num_envs=2, obs_noise=False)
        env.reset()
        run_zero(env, 10)
        env.step(actions)
        envs.append(env)
    walked, replayed = envs
    start = walked.qvel[:, 6:]
    _, state, *_ = walked.step(ZERO(2, 12))
    replayed._sim.ctrl[:] = replayed._default  # what step(zeros) commands, then its substeps one by one
    replayed._sim.step(config.DECIMATION - 1)
    before = replayed.qvel[:, 6:]
    replayed._sim.step(1)
    want = (replayed.qvel[:, 6:] - before) / config.PHYSICS_DT
    np.testing.assert_allclose(state.joint_acc.numpy(), want, rtol=1e-4, atol=1e-2)
    policy_rate = (state.joint_vel.numpy() - start) / config.CONTROL_DT
    assert np.abs(policy_rate - state.joint_acc.numpy()).max() > 1.0  # not the policy-step difference


def test_same_seed_same_trajectories(stepper):
    def rollout(seed):
        env = make(stepper=stepper, num_envs=3, seed=seed)
        obs = [env.reset()]
        g = torch.Generator().manual_seed(5)
        for _ in range(30):
            obs.append(env.step(torch.randn(3, 12, generator=g))[0])
        return torch.stack(obs)

    a, b, c = rollout(1), rollout(1), rollout(2)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_resetting_one_env_leaves_the_others_untouched(stepper):
    envs = [make(stepper=stepper, num_envs=3, seed=3, obs_noise=False) for _ in range(2)]
    for e in envs:
        e.reset()
    g = torch.Generator().manual_seed(0)
    for t in range(25):
        a = 0.5 * torch.randn(3, 12, generator=g)
        if t == 10:
            envs[0]._reset_envs(torch.tensor([0]), None)
        (o0, s0, *_), (o1, s1, *_) = envs[0].step(a), envs[1].step(a)
        torch.testing.assert_close(o0[1:], o1[1:], rtol=0, atol=0)
        torch.testing.assert_close(s0.joint_pos[1:], s1.joint_pos[1:], rtol=0, atol=0)
    assert not torch.equal(o0[0], o1[0])


class Bookkeeping:
    """Reference foot timers (Isaac Lab's contact-sensor rules) rebuilt from the contact flags."""

    def __init__(self):
        self.air = torch.zeros(4)
        self.contact = torch.zeros(4)
        self.last_air = torch.zeros(4)
        self.last_contact = torch.zeros(4)

    def check(self, s):
        dt = config.CONTROL_DT
        c = s.foot_contact[0]
        first = (self.air > 0) & c
        detached = (self.contact > 0) & ~c
        self.last_air = torch.where(first, self.air + dt, self.last_air)
        self.air = torch.where(c, 0.0, self.air + dt)
        self.last_contact = torch.where(detached, self.contact + dt, self.last_contact)
        self.contact = torch.where(c, self.contact + dt, 0.0)
        assert torch.equal(s.foot_first_contact[0], first)
        for mine, theirs in ((self.air, s.foot_air_time), (self.contact, s.foot_contact_time),
                             (self.last_air, s.foot_last_air_time), (self.last_contact, s.foot_last_contact_time)):
            torch.testing.assert_close(theirs[0], mine, atol=1e-5, rtol=0)
        # contact means a real force, and a foot in the air is above the ground
        assert torch.equal(c, s.foot_contact_force[0] > config.CONTACT_FORCE_THRESHOLD)
        return first


def test_air_time_and_first_contact_on_drop(stepper):
    env = make(stepper=stepper, num_envs=1)
    env.reset()
    ref = Bookkeeping()
    dt = config.CONTROL_DT
    touched_at = [None] * 4
    for t in range(1, 40):
        _, s, *_ = env.step(ZERO(1, 12))
        first = ref.check(s)
        for f in range(4):
            if touched_at[f] is None:
                if first[f]:
                    touched_at[f] = t
                    # the first touchdown reports the whole fall as the last flight
                    assert float(s.foot_last_air_time[0, f]) == pytest.approx(t * dt)
                else:
                    assert s.foot_height[0, f] > 0.02 and not s.foot_contact[0, f]
    assert all(t is not None and 2 <= t <= 12 for t in touched_at), touched_at
    assert s.foot_contact[0].all()
    assert (s.foot_height[0] - 0.022).abs().max() < 0.005


def test_lifting_one_foot(stepper):
    env = make(stepper=stepper, num_envs=1)
    env.reset()
    ref = Bookkeeping()
    for _ in range(100):  # stand (the drop settles within about 1.2 s)
        ref.check(env.step(ZERO(1, 12))[1])
    lift = ZERO(1, 12)
    lift[0, 1], lift[0, 2] = 2.0, -4.0  # FL thigh back, calf folded: the foot leaves the ground
    for t in range(4):
        _, s, *_ = env.step(lift)
        ref.check(s)
        if t == 0:
            assert not s.foot_contact[0, 0]
            assert float(s.foot_last_contact_time[0, 0]) > 1.0  # the stance it just ended
    assert s.foot_height[0, 0] > 0.1 and s.foot_contact[0, 1:].all()
    torch.testing.assert_close(s.foot_air_time[0, 0], torch.tensor(4 * config.CONTROL_DT))
    landed = None
    for t in range(30):
        _, s, *_ = env.step(ZERO(1, 12))
        if ref.check(s)[0]:
            landed = s
            break
    assert landed is not None, "the foot never came back down"
    assert float(landed.foot_last_air_time[0, 0]) > 4 * config.CONTROL_DT
    assert landed.foot_air_time[0, 0] == 0


def test_command_sampling_ranges_and_standing_fraction(stepper):
    env = make(stepper=stepper, num_envs=600, lin_vel_x=(0.5, 1.0), lin_vel_y=(-0.2, 0.1), ang_vel_z=(-1.0, -0.5),
               standing_fraction=0.3, nthread=1)
    env.reset()
    cmd = env.commands
    standing = (cmd == 0).all(dim=1)
    assert 0.22 < float(standing.float().mean()) < 0.38
    moving = cmd[~standing]
    for i, (lo, hi) in enumerate([(0.5, 1.0), (-0.2, 0.1), (-1.0, -0.5)]):
        assert moving[:, i].min() >= lo and moving[:, i].max() <= hi
        assert moving[:, i].max() - moving[:, i].min() > 0.8 * (hi - lo)
    env.set_command_ranges(lin_vel_x=(-0.1, 0.0))
    env.reset()                                   # every env draws new commands from the new range
    assert env.commands[:, 0].min() >= -0.1 and env.commands[:, 0].max() <= 0.0
    with pytest.raises(OptionError):
        env.set_command_ranges(lin_vel_x=(-3.0, 0.0))
    with pytest.raises(OptionError):
        env.set_command_ranges(heading=(0.0, 1.0))


def test_commands_resample_on_timer_and_external_mode(stepper):
    env = make(stepper=stepper, num_envs=4, resample_seconds=1.0)
    env.reset()
    first = env.commands.clone()
    run_zero(env, 49)
    assert torch.equal(env.commands, first)
    run_zero(env, 1)
    assert not torch.equal(env.commands, first)

    ext = make(stepper=stepper, num_envs=2, external_commands=True, resample_seconds=1.0)
    ext.reset()
    assert (ext.commands == 0).all()
    ext.set_commands(torch.tensor([[0.5, 0.0, 0.1], [0.0, -0.3, 0.0]]))
    _, s, *_ = run_zero(ext, 60)
    torch.testing.assert_close(s.commands, torch.tensor([[0.5, 0.0, 0.1], [0.0, -0.3, 0.0]]))


def test_flipped_robot_terminates(stepper):
    env = make(stepper=stepper, num_envs=2, obs_noise=False)
    env.reset()
    run_zero(env, 5)
    qpos = env.qpos[:1]
    qpos[0, 2] = 0.5
    qpos[0, 3:7] = [0.0, 1.0, 0.0, 0.0]  # upside down
    env.set_sim_state([0], qpos=qpos)
    obs, state, term, trunc, info = env.step(ZERO(2, 12))
    assert term.tolist() == [True, False] and trunc.tolist() == [False, False]
    assert state.projected_gravity[0, 2] > 0.9          # pre-reset state: still flipped
    assert obs[0, obs_slices()["projected_gravity"]][2] < -0.99  # post-reset obs: upright again
    assert info["episode_length"].tolist() == [6, 0]


def test_trunk_contact_terminates(stepper):
    env = make(stepper=stepper, num_envs=1)
    env.reset()
    folded = torch.tensor([0.0, 3.1, -0.9] * 4)  # legs pointing up: the belly lands on the floor
    qpos = env.qpos
    qpos[0, 2] = 0.12
    qpos[0, 7:] = folded.double().numpy()
    env.set_sim_state([0], qpos=qpos)
    hold = ((folded - torch.tensor(config.DEFAULT_JOINT_POS)) / config.ACTION_SCALE).unsqueeze(0)
    for _ in range(30):
        _, state, term, *_ = env.step(hold)
        if term[0]:
            break
    assert term[0] and state.trunk_contact[0]
    assert state.projected_gravity[0, 2] < -0.8  # upright: the trunk contact alone ended it


def test_time_out_is_truncated_not_terminated(stepper):
    env = make(stepper=stepper, num_envs=3, episode_steps=20, obs_noise=False)
    env.reset()
    obs, state, term, trunc, info = run_zero(env, 19)
    assert not trunc.any()
    obs, state, term, trunc, info = env.step(torch.full((3, 12), 1.0))
    assert trunc.all() and not term.any()
    assert (state.episode_step == 20).all() and (info["episode_length"] == 20).all()
    # obs is the new episode's first: joints back at default, last action zero
    sl = obs_slices()
    assert obs[:, sl["joint_pos"]].abs().max() < 1e-6 and (obs[:, sl["actions"]] == 0).all()
    assert (state.actions == 1.0).all()
    _, state, *_ = env.step(ZERO(3, 12))
    assert (state.episode_step == 1).all()


@pytest.mark.parametrize("poison", [float("nan"), 1.0e6])
def test_unstable_simulation_is_reset_and_counted(poison, stepper):
    env = make(stepper=stepper, num_envs=3, obs_noise=False)
    env.reset()
    run_zero(env, 3)
    qvel = env.qvel[1:2]
    qvel[0, 6:] = poison
    env.set_sim_state([1], qvel=qvel)
    obs, state, term, trunc, info = env.step(ZERO(3, 12))
    assert info["unstable"] == 1
    assert term.tolist() == [False, True, False]
    assert torch.isfinite(obs).all()
    for name, v in vars(state).items():
        if isinstance(v, torch.Tensor) and v.dtype.is_floating_point:
            assert torch.isfinite(v).all(), name
    obs, state, term, trunc, info = env.step(ZERO(3, 12))
    assert info["unstable"] == 0 and torch.isfinite(obs).all() and not term.any()


def test_bad_actions_raise():
    env = make(num_envs=2)
    env.reset()
    with pytest.raises(ValueError, match=r"\(2, 12\)"):
        env.step(ZERO(3, 12))
    with pytest.raises(ValueError, match="floating"):
        env.step(torch.zeros(2, 12, dtype=torch.long))
    bad = ZERO(2, 12)
    bad[1, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        env.step(bad)
    bad[1, 3] = float("inf")
    with pytest.raises(ValueError, match="NaN or inf"):
        env.step(bad)
    with pytest.raises(ValueError, match="torch.Tensor"):
        env.step(np.zeros((2, 12), np.float32))


def test_bad_options_raise():
    with pytest.raises(OptionError, match="num_envs"):
        EnvOptions(num_envs=0)
    with pytest.raises(OptionError, match="terrain"):
        EnvOptions(terrain="stairs")
    with pytest.raises(OptionError, match="friction_range"):
        EnvOptions(friction_range=(0.0, 2.0))
    with pytest.raises(OptionError, match="episode_steps"):
        MujocoQuadrupedEnv(EnvOptions(num_envs=1), seed=0, episode_steps=0)
    with pytest.raises(OptionError, match="EnvOptions"):
        MujocoQuadrupedEnv({"num_envs": 1}, seed=0)


def test_rough_terrain_levels_apply_at_next_reset(stepper):
    env = make(stepper=stepper, num_envs=6, terrain="rough", initial_terrain_level=2, episode_steps=5)
    env.reset()
    assert env.terrain_levels.tolist() == [2] * 6
    env.set_terrain_levels(torch.tensor([0, 9, 5, 5, 5, 5]))
    assert env.terrain_levels.tolist() == [2] * 6  # not yet
    _, state, *_ = run_zero(env, 1)
    assert state.base_height.max() < 0.36 and state.base_height.min() > 0.25  # relative to the ground
    run_zero(env, 4)  # time-out resets everyone
    assert env.terrain_levels.tolist() == [0, 9, 5, 5, 5, 5]
    # each env spawns on its own tile: x follows the level, y the terrain type
    x = env.qpos[:, 0]
    assert x[1] > x[2] > x[0]
    _, state, *_ = env.step(ZERO(6, 12))
    assert (state.terrain_level == torch.tensor([0, 9, 5, 5, 5, 5])).all()
    assert state.base_height.min() > 0.25  # dropped from BASE_INIT_HEIGHT above the local ground


def test_domain_randomisation_and_pushes(stepper):
    env = make(stepper=stepper, num_envs=8, friction_range=(0.3, 1.2), added_mass_range=(-1.0, 3.0),
               push_interval_seconds=2.0, push_velocity=1.0, obs_noise=False)
    env.reset()
    mu = env.foot_friction()
    mass = env.trunk_mass()
    assert (mu >= 0.3).all() and (mu <= 1.2).all() and len(np.unique(mu[:, 0])) == 8
    pair_mu = env._sim.friction[:, env.index.foot_pairs[0]].numpy().astype(np.float64)  # both tangential coefficients of each foot's pair
    np.testing.assert_array_equal(pair_mu[..., 0], mu)
    np.testing.assert_array_equal(pair_mu[..., 1], mu)
    assert (mass >= 6.921 - 1.0 - 1e-9).all() and (mass <= 6.921 + 3.0 + 1e-9).all() and np.ptp(mass) > 0.5
    speeds = []
    for _ in range(110):  # every env is pushed once within 2 s
        _, s, *_ = env.step(ZERO(8, 12))
        speeds.append(s.base_lin_vel[:, :2].norm(dim=1))
    assert torch.stack(speeds).max(dim=0).values.min() > 0.1

    plain = make(stepper=stepper, num_envs=2)
    assert (plain.foot_friction() == 0.8).all() and (plain.trunk_mass() == plain.model.body_mass[plain.index.trunk_body]).all()


def test_reset_yaw_and_get_data_for_rendering(stepper):
    env = make(stepper=stepper, num_envs=2, obs_noise=False)
    env.reset(yaw=torch.tensor([0.5, -2.0]))
    quat = env.qpos[:, 3:7]
    np.testing.assert_allclose(2 * np.arctan2(quat[:, 3], quat[:, 0]), [0.5, -2.0],
                               atol=1e-9 if stepper == "mujoco" else 1e-6)  # Warp's float32
    run_zero(env, 3)
    data = env.get_data(1)
    np.testing.assert_array_equal(data.qpos, env.qpos[1])
    trunk = env.model.body("trunk").id
    np.testing.assert_allclose(data.xpos[trunk], env.qpos[1, :3], atol=1e-9)  # forward computed
    assert env.model.camera("track").id >= 0
    with pytest.raises(ValueError, match="yaw"):
        env.reset(yaw=torch.zeros(3))


def test_frame_rotations_match_mujoco():
    import mujoco

    from harness.mujoco.read_state import projected_gravity as _projected_gravity, rotate_inverse as _rotate_inverse

    rng = np.random.default_rng(0)
    q = rng.normal(size=(6, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    v = rng.normal(size=(6, 3))
    for i in range(6):
        mat = np.zeros(9)
        mujoco.mju_quat2Mat(mat, q[i])
        rot = mat.reshape(3, 3)
        qt, vt = torch.from_numpy(q), torch.from_numpy(v)
        np.testing.assert_allclose(_rotate_inverse(qt, vt)[i].numpy(), rot.T @ v[i], atol=1e-12)
        np.testing.assert_allclose(_projected_gravity(qt)[i].numpy(), rot.T @ [0, 0, -1], atol=1e-12)
