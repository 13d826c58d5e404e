"""The MJCF robot: masses, joint ranges and order, collisions, terrain."""

import mujoco
import numpy as np
import pytest
import torch

from harness import config
from harness.mujoco import robot, terrain


@pytest.fixture(scope="module")
def flat_model():
    return robot.build_model(terrain.flat())


def test_total_mass_matches_go2(flat_model):
    assert robot.total_mass(flat_model) == pytest.approx(15.2, abs=0.05)
    assert flat_model.body("trunk").mass[0] == pytest.approx(6.921, abs=1e-3)
    for leg in config.LEGS:
        assert flat_model.body(f"{leg}_hip").mass[0] == pytest.approx(0.678)
        assert flat_model.body(f"{leg}_thigh").mass[0] == pytest.approx(1.152)
        assert flat_model.body(f"{leg}_calf").mass[0] == pytest.approx(0.241)


def test_joint_order_and_ranges(flat_model):
    m = flat_model
    assert m.nu == 24 and m.nq == 19 and m.nv == 18  # 12 PD servos, then 12 back-EMF terms
    for i, name in enumerate(config.JOINT_NAMES):
        j = m.joint(name)
        assert m.jnt_qposadr[j.id] == 7 + i
        lo, hi = m.jnt_range[j.id]
        if name.endswith("hip_joint"):
            assert (lo, hi) == pytest.approx((-1.047, 1.047))
            np.testing.assert_allclose(m.jnt_axis[j.id], [1, 0, 0])
        elif name.endswith("thigh_joint"):
            want = (-1.571, 3.491) if name.startswith("F") else (-0.524, 4.538)
            assert (lo, hi) == pytest.approx(want)
            np.testing.assert_allclose(m.jnt_axis[j.id], [0, 1, 0])
        else:
            assert (lo, hi) == pytest.approx((-2.723, -0.838))
        assert m.actuator_trnid[i, 0] == j.id
        assert m.actuator_gainprm[i, 0] * m.actuator_gear[i, 0] == pytest.approx(config.KP)
        assert m.actuator_trnid[12 + i, 0] == j.id


def test_geometry_facts(flat_model):
    m = flat_model
    np.testing.assert_allclose(m.body("FL_hip").pos, [0.1934, 0.0465, 0])
    np.testing.assert_allclose(m.body("RR_hip").pos, [-0.1934, -0.0465, 0])
    np.testing.assert_allclose(m.body("FR_thigh").pos, [0, -0.0955, 0])
    np.testing.assert_allclose(m.body("FL_calf").pos, [0, 0, -0.213])
    foot = m.geom("FL_foot")
    assert foot.size[0] == pytest.approx(0.022)
    np.testing.assert_allclose(m.pair_friction[robot.index(m).foot_pairs[0]], [[0.8, 0.8, 0.02, 0.01, 0.01]] * 4)
    np.testing.assert_allclose(m.geom("trunk").size, [0.188, 0.047, 0.057])
    assert m.opt.timestep == pytest.approx(config.PHYSICS_DT)
    assert m.camera("track").mode == mujoco.mjtCamLight.mjCAMLIGHT_TRACKCOM


COLLIDERS = ("trunk", *robot.THIGH_GEOMS, *config.FOOT_NAMES)


@pytest.mark.parametrize("kind", ["flat", "rough"])
def test_trunk_thighs_feet_collide_with_ground_only(kind):
    m = robot.build_model(terrain.rough() if kind == "rough" else terrain.flat())
    assert not m.geom_contype.any() and not m.geom_conaffinity.any()  # contacts come from the pairs alone
    grounds = {"flat": ["floor"], "rough": ["floor", "catch_floor"]}[kind]
    pairs = {frozenset((m.geom(int(a)).name, m.geom(int(b)).name)) for a, b in zip(m.pair_geom1, m.pair_geom2)}
    assert pairs == {frozenset((g, ground)) for g in COLLIDERS for ground in grounds} and m.npair == len(pairs)
    assert robot.index(m).foot_pairs.shape == (len(grounds), 4)


@pytest.mark.parametrize("kind", ["flat", "rough"])
def test_contact_pairs_simulate_exactly_as_geom_collisions(kind):
    """The pairs only skip the broad phase: 2 s of random PD targets give bit-identical states,
    with the feet's friction set as the env randomises it (both tangential coefficients of their pairs)."""
    t = terrain.rough() if kind == "rough" else terrain.flat()
    pairs = robot.build_model(t, visual=False)
    feet = robot.index(pairs).foot_pairs.ravel()
    pairs.pair_friction[feet, :2] = 0.5
    geoms = robot.geom_collision_model(t)
    geoms.geom_friction[[geoms.geom(f).id for f in config.FOOT_NAMES], 0] = 0.5  # the feet have priority
    rng = np.random.default_rng(0)
    datas = [mujoco.MjData(pairs), mujoco.MjData(geoms)]
    x, y = t.tile_centers()[-1, 0] if kind == "rough" else (0.0, 0.0)  # the hardest random-rough tile
    for d in datas:
        d.qpos[:3] = x, y, config.BASE_INIT_HEIGHT + t.height_at(x, y)
        d.qpos[3], d.qpos[7:] = 1.0, config.DEFAULT_JOINT_POS
    contacts = 0
    for i in range(400):
        if i % config.DECIMATION == 0:
            target = np.asarray(config.DEFAULT_JOINT_POS) + 0.25 * rng.standard_normal(12)
        for model, d in zip((pairs, geoms), datas):
            d.ctrl[:12] = target
            mujoco.mj_step(model, d)
        np.testing.assert_array_equal(datas[0].qpos, datas[1].qpos)
        contacts += datas[0].ncon
    assert contacts > 400  # the feet were on the ground most of the time


def test_rough_heightfield_matches_height_lookup():
    t = terrain.rough()
    m = robot.build_model(t)
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    rng = np.random.default_rng(1)
    geomid = np.zeros(1, np.int32)
    for _ in range(50):
        x, y = rng.uniform(-t.size_x / 2, t.size_x / 2), rng.uniform(-t.size_y / 2, t.size_y / 2)
        dist = mujoco.mj_ray(m, d, np.array([x, y, 5.0]), np.array([0, 0, -1.0]), None, 1, -1, geomid)
        assert 5.0 - dist == pytest.approx(float(t.height_at(x, y)), abs=0.02)
    centers = t.tile_centers()
    hardest = config.TERRAIN_LEVELS - 1
    assert t.height_at(*centers[hardest, 1]) > 1.0     # pyramid top
    assert t.height_at(*centers[hardest, 2]) < -1.0    # inverted pyramid pit
    assert abs(float(t.height_at(*centers[0, 1]))) < 1e-9  # level 0 is flat


def isaac_dc_motor(tau_pd, joint_vel, saturation=23.5, effort_limit=23.5, velocity_limit=30.0):
    """Isaac Lab's DCMotor._clip_effort (actuators/actuator_pd.py, isaaclab 2.3), re-derived in numpy."""
    hi = np.clip(saturation * (1.0 - joint_vel / velocity_limit), 0.0, effort_limit)
    lo = np.clip(saturation * (-1.0 - joint_vel / velocity_limit), -effort_limit, 0.0)
    return np.clip(tau_pd, lo, hi)


def test_motor_torque_follows_isaac_lab_dc_motor_curve(flat_model):
    """The joint torque MuJoCo applies is Isaac Lab's Go2 DC motor: PD, then the torque-speed limit."""
    m = flat_model
    d = mujoco.MjData(m)
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(200):
        d.qpos[7:] = np.array(config.DEFAULT_JOINT_POS) + rng.uniform(-0.3, 0.3, 12)
        d.qvel[6:] = rng.uniform(-29.0, 29.0, 12)   # the model's claim holds below the 30 rad/s no-load speed
        d.ctrl[:12] = np.array(config.DEFAULT_JOINT_POS) + rng.uniform(-1.5, 1.5, 12)
        mujoco.mj_forward(m, d)
        q, v = d.qpos[7:], d.qvel[6:]
        want = isaac_dc_motor(config.KP * (d.ctrl[:12] - q) - config.KD * v, v)
        np.testing.assert_allclose(d.qfrc_actuator[6:], want, atol=1e-6)
        checked += int((np.abs(want) < np.abs(config.KP * (d.ctrl[:12] - q) - config.KD * v) - 1e-3).sum())
    assert checked > 500  # the limit was active in many of the samples, in every quadrant mix


def test_physics_model_leaves_out_render_only_geoms():
    full, physics = robot.build_model(terrain.flat()), robot.build_model(terrain.flat(), visual=False)
    assert physics.ngeom < full.ngeom
    assert (physics.nbody, physics.nq, physics.nu, physics.nsensor) == (full.nbody, full.nq, full.nu, full.nsensor)
    np.testing.assert_allclose(physics.body_mass, full.body_mass)
    np.testing.assert_allclose(physics.body_inertia, full.body_inertia)
    for name in ("floor", "trunk", *robot.THIGH_GEOMS, *config.FOOT_NAMES):
        assert physics.geom(name).size == pytest.approx(full.geom(name).size)


def test_foot_kinematics_match_mujoco_on_random_states(flat_model):
    """The env's torch foot positions and velocities equal MuJoCo's site pose and site velocity."""
    m = flat_model
    rng = np.random.default_rng(3)
    n = 32
    qpos = np.zeros((n, m.nq))
    qpos[:, :3] = rng.normal(0.0, 2.0, (n, 3))
    quat = rng.normal(size=(n, 4))
    qpos[:, 3:7] = quat / np.linalg.norm(quat, axis=1, keepdims=True)
    qpos[:, 7:] = rng.uniform(robot.index(m).joint_lower, robot.index(m).joint_upper, (n, 12))
    qvel = rng.normal(0.0, 3.0, (n, m.nv))
    pos, vel = (a.numpy() for a in robot.FootKinematics(m)(torch.from_numpy(qpos), torch.from_numpy(qvel)))
    d = mujoco.MjData(m)
    site_vel = np.zeros(6)
    for i in range(n):
        d.qpos[:], d.qvel[:] = qpos[i], qvel[i]
        mujoco.mj_forward(m, d)
        for f, name in enumerate(config.FOOT_NAMES):
            site = m.site(name).id
            mujoco.mj_objectVelocity(m, d, mujoco.mjtObj.mjOBJ_SITE, site, site_vel, 0)  # world axes
            np.testing.assert_allclose(pos[i, f], d.site_xpos[site], atol=1e-6)
            np.testing.assert_allclose(vel[i, f], site_vel[3:], atol=1e-6)
