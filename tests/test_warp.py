"""MuJoCo Warp, the GPU stepper, run on Warp's CPU device (CI has no GPU): it agrees with C MuJoCo,
the harness picks it where it should (training on cuda, never scoring), and a real PPO trains on it
through the harness. The env contract tests run on it in tests/test_mujoco_env.py.

The first use compiles Warp's kernels (about a minute on 2 cores, cached in ~/.cache/warp)."""

import importlib.util
import re

import numpy as np
import pytest
import torch

from harness import backends, config
from harness.config import EnvOptions, OptionError
from harness.env_api import BackendError
from harness.mujoco import robot, terrain

pytestmark = pytest.mark.skipif(importlib.util.find_spec("mujoco_warp") is None,
                                reason="mujoco-warp is not installed (it needs Python >= 3.11)")


def _twin_steppers(ground, n):
    """C MuJoCo with Warp's solver (Newton, float64) and MuJoCo Warp (float32, CPU device), same model."""
    from harness.mujoco.stepper_cpu import CpuStepper
    from harness.mujoco.stepper_warp import WarpStepper, gpu_model

    model = robot.build_model(ground, visual=False)
    return CpuStepper(gpu_model(model), n, 1), WarpStepper(model, n, "cpu")


def _start(sims, ground, n, seed):
    """The same spawns in both: each world on its own tile (rough), random yaw, default pose."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.as_tensor(ground.tile_centers()[np.arange(n) % ground.levels, np.arange(n) % ground.types])
    yaw = torch.rand(n, generator=g, dtype=torch.float64) * 2 * np.pi
    qpos = torch.zeros(n, 19, dtype=torch.float64)
    qpos[:, :2] = centers
    qpos[:, 2] = torch.as_tensor(ground.height_at(centers[:, 0].numpy(), centers[:, 1].numpy())) + config.BASE_INIT_HEIGHT
    qpos[:, 3], qpos[:, 6] = torch.cos(yaw / 2), torch.sin(yaw / 2)
    qpos[:, 7:] = torch.tensor(config.DEFAULT_JOINT_POS)
    every = torch.arange(n)
    for s in sims:
        s.clear(every)
        s.qpos[:] = qpos.to(s.dtype)
        s.qvel[:] = 0.0
        s.ctrl[:] = torch.tensor(config.DEFAULT_JOINT_POS, dtype=s.dtype)
        s.restarted(every)
    return g


# Measured (8 worlds, random N(0, 0.3) actions, this machine): on flat ground the two stay within
# 5e-6 m / 2e-4 (m/s, rad/s) for 100 policy steps (2 s: the drop, landing, stepping in place); float32
# rounding is the whole difference. On the heightfield the two collide differently at the edges of its
# cells and part after about 10 policy steps (1e-2 by step 25), while C MuJoCo's PGS and Newton part
# by 2e-2 within 25 steps on flat ground already: the solver change is the larger one. So: flat for
# 50 policy steps at 20x the measured gap, rough for 5 steps (landing on the tiles).
@pytest.mark.parametrize("kind, policy_steps, pos_tol, vel_tol", [("flat", 50, 1e-4, 5e-3), ("rough", 5, 3e-4, 2e-2)])
def test_warp_agrees_with_c_mujoco_on_short_rollouts(kind, policy_steps, pos_tol, vel_tol):
    ground = terrain.flat() if kind == "flat" else terrain.rough()
    n = 6
    sims = _twin_steppers(ground, n)
    g = _start(sims, ground, n, seed=1)
    default = torch.tensor(config.DEFAULT_JOINT_POS, dtype=torch.float64)
    for _ in range(policy_steps):
        targets = default + config.ACTION_SCALE * 0.3 * torch.randn(n, 12, generator=g, dtype=torch.float64)
        for s in sims:
            s.ctrl[:] = targets.to(s.dtype)
            s.step(config.DECIMATION)
    c, w = sims
    assert float(c.qpos[:, 2].min()) > 0.15 + float(ground.height_at(0.0, 0.0)) or kind == "rough"  # upright, moving
    assert float(c.qvel.abs().max()) > 0.1
    np.testing.assert_allclose(w.qpos.double().numpy(), c.qpos.numpy(), atol=pos_tol, rtol=0)
    np.testing.assert_allclose(w.qvel.double().numpy(), c.qvel.numpy(), atol=vel_tol, rtol=0)
    # the contact sensors (what the env reads as foot contact) agree too: same feet down, forces close
    idx = robot.index(c.model)
    cols = torch.as_tensor(idx.foot_contact[:, None] + np.arange(1, 4))
    fc, fw = (torch.linalg.vector_norm(s.sensordata[:, cols].double(), dim=-1) for s in sims)
    assert torch.equal(fc > config.CONTACT_FORCE_THRESHOLD, fw > config.CONTACT_FORCE_THRESHOLD)
    assert float((fc - fw).abs().max()) < 0.05 * float(fc.max()) + 0.5


def test_env_on_warp_starts_where_the_c_env_starts():
    """Same seed, same draws (numpy's on a CPU device): the first observations and states agree."""
    from harness.mujoco.env import MujocoQuadrupedEnv

    opts = EnvOptions(num_envs=4, friction_range=(0.3, 1.2), added_mass_range=(-1.0, 3.0))
    envs = [MujocoQuadrupedEnv(opts, seed=3, stepper=s) for s in ("mujoco", "warp")]
    obs = [e.reset() for e in envs]
    torch.testing.assert_close(obs[1], obs[0], atol=1e-6, rtol=0)
    np.testing.assert_allclose(envs[1].foot_friction(), envs[0].foot_friction(), rtol=1e-6)
    np.testing.assert_allclose(envs[1].trunk_mass(), envs[0].trunk_mass(), rtol=1e-6)
    assert envs[1].model.opt.solver == 2 and envs[0].model.opt.solver == 0  # Newton on Warp, PGS on C MuJoCo
    assert envs[1]._sim.qpos.dtype == torch.float32 and envs[0]._sim.qpos.dtype == torch.float64


def test_the_harness_picks_warp_for_training_on_cuda_and_c_mujoco_for_scoring(monkeypatch, tmp_path):
    monkeypatch.delenv(backends.STEPPER_KNOB, raising=False)
    assert backends.mujoco_stepper("cuda") == "warp" and backends.mujoco_stepper("cuda:1") == "warp"
    assert backends.mujoco_stepper("cpu") == "mujoco"
    monkeypatch.setenv(backends.STEPPER_KNOB, "warp")
    assert backends.mujoco_stepper("cpu") == "warp"
    env = backends.make_env("mujoco", EnvOptions(num_envs=2), seed=0, device=torch.device("cpu"))
    assert env.stepper == "warp"
    # scoring walks its panel on C MuJoCo even so (and even on cuda: the same call, SCORING_STEPPER)
    from harness import artifact, scoring
    from harness.mujoco import env as env_mod

    built = []
    real_init = env_mod.MujocoQuadrupedEnv.__init__

    def spy(self, *args, **kw):
        real_init(self, *args, **kw)
        built.append(self.stepper)

    monkeypatch.setattr(env_mod.MujocoQuadrupedEnv, "__init__", spy)
    path = tmp_path / "policy.pt2"
    artifact.export_policy(torch.nn.Linear(48, 12), path)
    metrics = scoring.evaluate_policy(path, device="cpu", episodes=2, steps=5)
    assert built == ["mujoco"] and metrics["vel_err"] > 0
    monkeypatch.setenv(backends.STEPPER_KNOB, "mjx")
    with pytest.raises(BackendError, match="mujoco or warp"):
        backends.mujoco_stepper("cpu")


def test_num_envs_bounds_follow_the_device():
    from harness.context import TrainContext

    big = config.make_options(num_envs=16384)
    config.check_device(big, "cuda")
    with pytest.raises(OptionError, match="on the CPU"):
        config.check_device(big, "cpu")
    with pytest.raises(OptionError):
        config.make_options(num_envs=16385)
    ctx = TrainContext(0, torch.device("cpu"), "mujoco", 1.0, smoke=True)
    with pytest.raises(OptionError, match="on the CPU"):
        ctx.make_env(num_envs=8193)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: the no-GPU message cannot be shown")
def test_preflight_on_cuda_without_a_gpu_says_what_to_do():
    with pytest.raises(BackendError, match="--device cpu"):
        backends.preflight("mujoco", "cuda")


def test_preflight_child_warms_the_cache_or_names_the_fix(tmp_path):
    """The child process backends.preflight runs: exit 0 when MuJoCo Warp works here; without the
    package, exit 3 and the install command (a shadow package that fails to import stands in)."""
    import os
    import subprocess
    import sys

    from conftest import PROJECT

    cmd = [sys.executable, "-m", "harness.mujoco.stepper_warp", "--warm", "cpu"]
    ok = subprocess.run(cmd, cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0 and "kernels ready on cpu" in ok.stdout, ok.stderr
    shadow = tmp_path / "mujoco_warp"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise ImportError('no mujoco_warp in this test')\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{PROJECT}"}
    missing = subprocess.run(cmd, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 3 and "uv sync" in missing.stderr and "--device cpu" in missing.stderr, missing.stderr


def test_a_ppo_smoke_run_trains_on_warp_through_the_harness(tmp_path):
    """The baseline train.py (at 16 envs: Warp's CPU device is slow) through the whole harness:
    supervised worker in its sandbox, kernels warmed before the clock, scored on C MuJoCo."""
    from conftest import PROJECT, make_repo, rows, run_cmd, summary

    source = (PROJECT / "train.py").read_text()
    source, n = re.subn(r"^ENV_OPTIONS = dict\(num_envs=512\)", "ENV_OPTIONS = dict(num_envs=16)", source, flags=re.M)
    assert n == 1
    source = re.sub(r"^STEPS_PER_ENV = 24", "STEPS_PER_ENV = 8", source, flags=re.M)
    repo = make_repo(tmp_path / "repo", source)
    p = run_cmd(repo, "train.py", "--smoke", "--budget", "6",
                env={"HARNESS_MUJOCO_STEPPER": "warp", "HARNESS_HANG_TIMEOUT_S": "60"}, timeout=420)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    s = summary(p.stdout)
    assert s["harness"] == "ok" and s["verdict"] == "smoke", s
    assert float(s["startup_seconds"]) > 0 and int(s["env_steps"].replace(",", "")) >= 16 * 8
    [row] = rows(repo)
    assert "test overrides" in row["reason"] and "HARNESS_MUJOCO_STEPPER" in row["reason"]
    assert row["resources"].endswith("(MuJoCo Warp)")  # never paired with a C MuJoCo row
    log = (repo / "runs" / row["run_id"] / "seed1" / "train.log").read_text()
    assert "MuJoCo Warp on cpu: kernels ready" in log
    curves = (repo / "runs" / row["run_id"] / "seed1" / "curves.csv").read_text().splitlines()
    assert len(curves) >= 2  # PPO iterations logged
