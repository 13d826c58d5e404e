"""The task (flat or rough): chosen once per branch, scored on its own panel, paired only within itself."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import STAND_STILL, commit_train, git, make_repo, rows, run_cmd, summary
from harness import artifact, config, gitops, verdict
from harness.experiment import choose_task
from harness.mujoco.env import MujocoQuadrupedEnv
from harness.panel import make_panel, standing_still_error
from harness.rollout import EVAL_ENV_SEED, eval_options, panel_rollout
from harness.scoring import evaluate_policy, held_out
from harness.settings import Settings, UsageError
from test_scoring import reacting_policy
from test_verdict import _row

# a train.py that trains on the branch's task and says which it was given
ON_THE_TASK = STAND_STILL.replace("env = ctx.make_env(num_envs=2)",
                                  "print('TASK', ctx.task)\n    env = ctx.make_env(num_envs=2, terrain=ctx.task)")


def test_scores_pair_only_within_a_task():
    rows_ = [
        _row("aaaaaaa", "baseline", "1:0.3000", held_out="0.3500", seeds="1"),   # before the task column: flat
        _row("aaaaaaa", "floor", "2:0.2000", task="flat"),
        _row("aaaaaaa", "floor", "1:0.6000;2:0.5000;3:0.7000", task="rough"),
        _row("aaaaaaa", "keep", "4:0.6500", task="rough", held_out="0.8000", seeds="1"),
    ]
    assert verdict.incumbent_scores(rows_, "aaaaaaa", "mujoco", 300.0) == {1: 0.3, 2: 0.2}
    assert verdict.incumbent_scores(rows_, "aaaaaaa", "mujoco", 300.0, task="flat") == {1: 0.3, 2: 0.2}
    assert verdict.incumbent_scores(rows_, "aaaaaaa", "mujoco", 300.0, task="rough") == {1: 0.6, 2: 0.5, 3: 0.7, 4: 0.65}
    assert verdict.incumbent_held_out(rows_, "aaaaaaa", "mujoco", 300.0, task="flat") == (0.35, 1)
    assert verdict.incumbent_held_out(rows_, "aaaaaaa", "mujoco", 300.0, task="rough") == (0.8, 1)
    assert verdict.noise_floor(rows_[:2], "aaaaaaa", task="rough") is None


def test_the_rough_panel_spreads_episodes_evenly_over_the_levels_with_the_flat_commands():
    flat, rough = make_panel(), make_panel(task="rough")
    assert flat.levels is None
    assert torch.equal(rough.commands, flat.commands) and torch.equal(rough.start_yaw, flat.start_yaw)
    counts = torch.bincount(rough.levels, minlength=config.TERRAIN_LEVELS)
    assert len(counts) == config.TERRAIN_LEVELS and int(counts.max() - counts.min()) <= 1
    assert bool((rough.levels[1:] >= rough.levels[:-1]).all())      # easiest first
    assert standing_still_error(rough) == standing_still_error(flat)


def test_the_rough_walk_puts_each_episode_on_its_level():
    panel = make_panel(episodes=2 * config.TERRAIN_LEVELS, task="rough")
    env = MujocoQuadrupedEnv(eval_options(panel.episodes, "rough"), seed=EVAL_ENV_SEED, external_commands=True, nthread=1)
    try:
        first = next(panel_rollout(lambda obs: torch.zeros(obs.shape[0], 12), env, panel, 1, torch.device("cpu")))
        assert torch.equal(first.state.terrain_level.cpu(), panel.levels)
        # on its tile: the spawn is within the reset spread of that level's tile centre
        centers = env.terrain.tile_centers()[panel.levels.numpy(), env._types]
        assert abs(env.qpos[:, :2] - centers).max() < 0.6
    finally:
        env.close()
    with pytest.raises(ValueError, match="unknown task"):
        eval_options(4, "stairs")


def test_rough_scoring_and_its_held_out_check_walk_the_rough_panel(tmp_path):
    path = artifact.export_policy(reacting_policy(), tmp_path / "policy.pt2")   # its walk depends on the ground
    e, steps = 10, 150   # one episode per level
    rough = evaluate_policy(path, episodes=e, steps=steps, task="rough")
    flat = evaluate_policy(path, episodes=e, steps=steps)
    assert rough["task"] == "rough" and flat["task"] == "flat"
    assert rough["vel_err"] != flat["vel_err"] and rough["standing_still"] == flat["standing_still"]
    # the held-out check on the main panel's seed walks exactly the main rough walk under "nominal"
    r = held_out([path], seed=config.PANEL_SEED, episodes=e, steps=steps, task="rough")
    assert r["task"] == "rough"
    assert r["policies"][str(path)]["by_condition"]["nominal"] == rough["vel_err"]


def _settings(task=None, smoke=False):
    return Settings("mujoco", "cpu", 300.0, ["--smoke"] if smoke else [], 8, task=task)


def test_the_branch_remembers_its_task_and_refuses_another(tmp_path):
    repo = make_repo(tmp_path / "repo")
    s = _settings("rough", smoke=True)          # a smoke run may try a task without choosing it
    choose_task(repo, "autoresearch/test", s, has_incumbent=False)
    assert s.task == "rough" and gitops.branch_task(repo, "autoresearch/test") is None
    s = _settings("rough")                      # the first real run chooses it
    choose_task(repo, "autoresearch/test", s, has_incumbent=False)
    s = _settings()                             # later runs, no --task: the branch's
    choose_task(repo, "autoresearch/test", s, has_incumbent=True)
    assert s.task == "rough"
    with pytest.raises(UsageError, match="runs the rough task.*git checkout -b"):
        choose_task(repo, "autoresearch/test", _settings("flat", smoke=True), has_incumbent=True)
    s = _settings()                             # another branch is its own
    choose_task(repo, "autoresearch/other", s, has_incumbent=False)
    assert s.task == "flat"
    s = _settings()                             # a branch kept before tasks existed was flat
    git(repo, "config", "--unset", "branch.autoresearch/test.autoresearch-task")
    choose_task(repo, "autoresearch/test", s, has_incumbent=True)
    assert s.task == "flat"
    with pytest.raises(UsageError, match="runs the flat task"):
        choose_task(repo, "autoresearch/test", _settings("rough"), has_incumbent=True)


def test_a_rough_run_trains_on_the_task_and_records_it(tmp_path):
    repo = make_repo(tmp_path / "repo", ON_THE_TASK)
    p = run_cmd(repo, "train.py", "--smoke", "--task", "rough")
    assert p.returncode == 0, p.stdout + p.stderr
    s = summary(p.stdout)
    assert s["task"] == "rough" and s["verdict"] == "smoke"
    (row,) = rows(repo)
    assert row["task"] == "rough" and row["description"] == "baseline: baseline"   # the commit's subject, marked
    run_dir = repo / "runs" / row["run_id"]
    assert "TASK rough" in (run_dir / "seed1" / "train.log").read_text()
    assert json.loads((run_dir / "seed1" / "metrics.json").read_text())["task"] == "rough"
    # a task the branch has not chosen is refused before anything is recorded
    git(repo, "config", "branch.autoresearch/test.autoresearch-task", "flat")
    commit_train(repo, ON_THE_TASK + "\n", "again")
    p = run_cmd(repo, "train.py", "--smoke", "--task", "rough")
    assert p.returncode == 2 and "runs the flat task" in p.stdout
    assert len(rows(repo)) == 1
