"""The policy video: a short offscreen rollout written as MP4/GIF, the policy lookup, and the no-GL message."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from harness import video
from harness.artifact import export_policy
from harness.results import COLUMNS

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def zero_policy(tmp_path_factory):
    """A policy artifact whose actions are all zero: the robot holds its default pose."""
    net = torch.nn.Linear(48, 12)
    torch.nn.init.zeros_(net.weight)
    torch.nn.init.zeros_(net.bias)
    return export_policy(net, tmp_path_factory.mktemp("zero") / "seed1" / "policy.pt2")


def run_video_cli(*args, cwd, env_overrides=None, timeout=240):
    """`python -m harness.video ...` in a fresh process, run from cwd (MuJoCo may drop a log file there)."""
    env = dict(os.environ, PYTHONPATH=str(REPO), **(env_overrides or {}))
    return subprocess.run([sys.executable, "-m", "harness.video", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def gl_backend():
    backend, failures = video.find_gl_backend()
    if backend is None:
        pytest.skip(
            "no offscreen OpenGL backend works here, so no video can be rendered: install "
            f"{video.GL_PACKAGES['egl']} (EGL) or {video.GL_PACKAGES['osmesa']} (OSMesa). "
            f"Probe said: {'; '.join(failures)}"
        )
    return backend


def test_short_rollout_is_written_as_mp4(tmp_path, gl_backend, zero_policy):
    """The CLI end to end: probe GL, load the artifact, roll out on the panel, render, encode."""
    out = tmp_path / "walk.mp4"
    proc = run_video_cli(zero_policy, "--out", out, "--seconds", 1.0, "--width", 160, "--height", 96, "--fps", 25,
                         cwd=tmp_path, env_overrides={"MUJOCO_GL": gl_backend})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"MUJOCO_GL={gl_backend}" in proc.stdout and "fell" not in proc.stdout  # zero actions: it stands
    import imageio.v2 as imageio

    frames = np.stack([f for f in imageio.get_reader(out)])  # not list(): the reader says its length is inf
    assert frames.shape == (25, 96, 160, 3), frames.shape   # 1 s at 25 fps
    assert frames.std() > 10.0                              # a scene, not a blank frame
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 0.1  # time passes on screen


def test_gif_and_mp4_writers(tmp_path):
    frames = [np.full((48, 64, 3), 20 * k, dtype=np.uint8) for k in range(6)]
    gif = video.write_video(frames, tmp_path / "a.gif", fps=10)
    from PIL import Image

    with Image.open(gif) as im:
        assert im.size == (64, 48) and im.n_frames == 6
    mp4 = video.write_video(frames, tmp_path / "a.mp4", fps=10)
    import imageio.v2 as imageio

    assert len([f for f in imageio.get_reader(mp4)]) == 6
    with pytest.raises(video.VideoError, match="no frames"):
        video.write_video([], tmp_path / "b.mp4", fps=10)


def test_without_a_gl_backend_the_message_says_what_to_install(tmp_path):
    """A backend that cannot work (MUJOCO_GL=disable) stands in for a machine without GL libraries."""
    policy = tmp_path / "policy.pt2"
    policy.write_bytes(b"never loaded: the GL check comes first")
    proc = run_video_cli(policy, "--out", tmp_path / "x.mp4", cwd=tmp_path, env_overrides={"MUJOCO_GL": "disable"})
    assert proc.returncode == 2
    assert "libegl1" in proc.stderr and "libosmesa6" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.mp4").exists()


def _results(path, rows):
    with open(path, "w") as f:
        f.write("\t".join(COLUMNS) + "\n")
        for r in rows:
            f.write("\t".join(r.get(c, "") for c in COLUMNS) + "\n")


def test_best_resolves_to_the_incumbents_best_seed(tmp_path):
    runs = tmp_path / "runs"
    rows = [
        {"run_id": "r1", "commit": "aaaaaaa", "status": "baseline", "vel_err": "0.3000", "seed_scores": "1:0.3;2:0.3"},
        {"run_id": "r2", "commit": "bbbbbbb", "status": "keep", "vel_err": "0.2000", "seed_scores": "1:0.25;2:0.15"},
        {"run_id": "r3", "commit": "ccccccc", "status": "discard", "vel_err": "0.1000", "seed_scores": "1:0.1"},
    ]
    _results(tmp_path / "results.tsv", rows)
    for r in rows:
        for seed in (1, 2):
            (runs / r["run_id"] / f"seed{seed}").mkdir(parents=True)
            (runs / r["run_id"] / f"seed{seed}" / "policy.pt2").write_bytes(b"x")
    t = video.resolve_target("best", tmp_path / "results.tsv", runs)
    assert t.policy == runs / "r2" / "seed2" / "policy.pt2"  # the kept run (not the lucky discard), its best seed
    assert t.default_out == runs / "r2" / "seed2" / "walk.mp4"
    assert video.resolve_target("r3", tmp_path / "results.tsv", runs).policy == runs / "r3" / "seed1" / "policy.pt2"
    seed_dir = runs / "r1" / "seed2"
    assert video.resolve_target(str(seed_dir), tmp_path / "results.tsv", runs).policy == seed_dir / "policy.pt2"
    with pytest.raises(video.VideoError, match="neither a policy file"):
        video.resolve_target("no-such-run", tmp_path / "results.tsv", runs)


def test_best_without_a_scored_run_says_so(tmp_path):
    _results(tmp_path / "results.tsv", [{"run_id": "r1", "commit": "a", "status": "crash", "seed_scores": "1:crash"}])
    with pytest.raises(video.VideoError, match="no scored baseline or kept run"):
        video.resolve_target("best", tmp_path / "results.tsv", tmp_path / "runs")


def test_a_process_that_already_imported_mujoco_with_another_backend_renders_in_a_child():
    """MuJoCo fixes its GL backend at import: main() must notice and re-run itself in a fresh process."""
    import mujoco  # noqa: F401  (this pytest process: whatever MUJOCO_GL was at import)

    current = video._mujoco_gl_in_this_process()
    assert current is not None
    other = "osmesa" if current == "egl" else "egl"
    before = os.environ.get("MUJOCO_GL")
    assert video.use_gl_backend(other) is False
    assert os.environ.get("MUJOCO_GL") == before  # too late to switch here: left as it was
