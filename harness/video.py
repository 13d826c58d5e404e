"""A video of a policy walking: the morning's "does it actually walk?" check.

`uv run evaluate.py video [RUN_ID|best|path] [--out FILE] [--seconds S]` rolls a saved policy
out on a fixed slice of the evaluation panel (episode 0's first seconds by default) in the
MuJoCo evaluation environment and renders it offscreen from the model's "track" camera,
with the commanded and the actual planar velocity drawn as arrows and printed on the frame.

Offscreen rendering needs an OpenGL backend without a display: EGL (Debian/Ubuntu packages
libegl1, libgl1, libgl1-mesa-dri) or OSMesa (libosmesa6). MuJoCo picks its backend from
MUJOCO_GL when it is first imported, so this module never imports mujoco at load time: it
probes which backend works in a short child process, sets MUJOCO_GL, and re-runs itself in a
child process when mujoco was already imported with another backend.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import config

GL_BACKENDS = ("egl", "osmesa")
GL_PACKAGES = {
    "egl": "libegl1 libgl1 libgl1-mesa-dri",
    "osmesa": "libosmesa6",
}
INSTALL_HINT = (
    "offscreen rendering needs an OpenGL backend that works without a display. On Debian/Ubuntu install "
    f"EGL: `apt-get install -y --no-install-recommends {GL_PACKAGES['egl']}` "
    f"or OSMesa: `apt-get install -y --no-install-recommends {GL_PACKAGES['osmesa']}`; "
    "then run again (or choose one with MUJOCO_GL=egl|osmesa)."
)
CAMERA = "track"
VIDEO_NAME = "walk.mp4"

COLOR_COMMAND = (0.10, 0.85, 0.30, 0.95)   # green arrow: what the panel asks for
COLOR_ACTUAL = (1.00, 0.45, 0.05, 0.95)    # orange arrow: what the robot does
ARROW_HEIGHT = 0.28                         # m above the trunk, so the arrows never hide in the body


class VideoError(RuntimeError):
    """The video cannot be made; the message says why and what to do."""


# --- which OpenGL backend works here ---------------------------------------------------

_PROBE = """
import mujoco
xml = '<mujoco><worldbody><light pos="0 0 2"/><geom type="box" size=".1 .1 .1"/></worldbody></mujoco>'
m = mujoco.MjModel.from_xml_string(xml)
d = mujoco.MjData(m)
mujoco.mj_forward(m, d)
r = mujoco.Renderer(m, 32, 32)
r.update_scene(d)
px = r.render()
r.close()
assert px.shape == (32, 32, 3) and px.std() > 0, "rendered a blank frame"
print("ok")
"""


def probe_gl(backend: str, timeout: float = 120.0) -> str | None:
    """None if MuJoCo renders offscreen with MUJOCO_GL=backend (tried in a child process), else why not."""
    env = dict(os.environ, MUJOCO_GL=backend, PYOPENGL_PLATFORM=backend)
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"MUJOCO_GL={backend}: the probe did not finish in {timeout:.0f} s"
    if proc.returncode == 0 and "ok" in proc.stdout:
        return None
    tail = (proc.stderr or proc.stdout).strip().splitlines()
    return f"MUJOCO_GL={backend}: {tail[-1] if tail else f'exit code {proc.returncode}'}"


def find_gl_backend() -> tuple[str | None, list[str]]:
    """(the first backend that renders, the reasons the others did not).

    A MUJOCO_GL already set by the user is the only one tried.
    """
    chosen = os.environ.get("MUJOCO_GL", "").strip().lower()
    candidates = (chosen,) if chosen else GL_BACKENDS
    failures = []
    for backend in candidates:
        why = probe_gl(backend)
        if why is None:
            return backend, failures
        failures.append(why)
    return None, failures


def gl_missing_message(failures: list[str]) -> str:
    return "no offscreen OpenGL backend works here (" + "; ".join(failures) + "). " + INSTALL_HINT


def _mujoco_gl_in_this_process() -> str | None:
    """The backend mujoco was imported with here, or None when mujoco is not imported yet."""
    if "mujoco" not in sys.modules:
        return None
    from mujoco.rendering.classic import gl_context

    return getattr(gl_context, "_MUJOCO_GL", "") or "default"


def use_gl_backend(backend: str) -> bool:
    """Make this process render with `backend`; False when mujoco was already imported with another."""
    current = _mujoco_gl_in_this_process()
    if current is None:
        os.environ["MUJOCO_GL"] = backend
        os.environ.setdefault("PYOPENGL_PLATFORM", backend)
        return os.environ["PYOPENGL_PLATFORM"] == backend
    return current == backend


# --- drawing on the scene and the frame -------------------------------------------------


def _add_arrow(scene, start: np.ndarray, end: np.ndarray, rgba, width: float = 0.022) -> None:
    """Append an arrow geom to the scene (no-op for a zero-length arrow or a full scene)."""
    import mujoco

    if scene.ngeom >= scene.maxgeom or np.linalg.norm(end - start) < 0.03:  # below 3 cm: just a blob
        return
    geom = scene.geoms[scene.ngeom]
    mujoco.mjv_initGeom(geom, mujoco.mjtGeom.mjGEOM_ARROW, np.zeros(3), np.zeros(3), np.eye(3).ravel(),
                        np.asarray(rgba, dtype=np.float32))
    mujoco.mjv_connector(geom, mujoco.mjtGeom.mjGEOM_ARROW, width, start.astype(np.float64), end.astype(np.float64))
    scene.ngeom += 1


def _planar_world(vec_body_xy: np.ndarray, yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    x, y = float(vec_body_xy[0]), float(vec_body_xy[1])
    return np.array([c * x - s * y, s * x + c * y, 0.0])


def _font(size: int):
    from PIL import ImageFont

    for name in ("DejaVuSansMono.ttf", "DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            pass
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


@dataclass
class Overlay:
    title: str
    t: float
    command: np.ndarray      # (3,) v_x, v_y, yaw rate
    actual: np.ndarray       # (3,) body-frame v_x, v_y, yaw rate
    running_err: float       # mean planar tracking error so far, m/s
    banner: str = ""         # e.g. "FELL at 3.2 s"


def draw_overlay(pixels: np.ndarray, o: Overlay) -> np.ndarray:
    """Text panel on the frame: commanded vs actual velocity, the error, and a legend for the arrows."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(pixels)
    h, w = pixels.shape[:2]
    size = max(10, int(h / 30))
    font = _font(size)
    draw = ImageDraw.Draw(img, "RGBA")
    err = float(np.linalg.norm(o.command[:2] - o.actual[:2]))
    lines = [
        (f"{o.title}   t {o.t:5.2f} s", (255, 255, 255)),
        (f"command  vx {o.command[0]:+.2f}  vy {o.command[1]:+.2f}  wz {o.command[2]:+.2f}",
         tuple(int(255 * c) for c in COLOR_COMMAND[:3])),
        (f"actual   vx {o.actual[0]:+.2f}  vy {o.actual[1]:+.2f}  wz {o.actual[2]:+.2f}",
         tuple(int(255 * c) for c in COLOR_ACTUAL[:3])),
        (f"|cmd-vel| {err:.2f} m/s   mean so far {o.running_err:.3f} m/s", (235, 235, 235)),
        ("arrows: green = command, orange = actual", (200, 200, 200)),
    ]
    pad, step = size // 2, int(size * 1.3)
    box_w = max(draw.textlength(text, font=font) for text, _ in lines) + 2 * pad
    draw.rectangle([0, 0, box_w, pad * 2 + step * len(lines)], fill=(0, 0, 0, 150))
    for i, (text, color) in enumerate(lines):
        draw.text((pad, pad + i * step), text, fill=color, font=font)
    if o.banner:
        bw = draw.textlength(o.banner, font=font) + 2 * pad
        draw.rectangle([(w - bw) / 2, h / 2 - step, (w + bw) / 2, h / 2 + step * 0.4], fill=(180, 20, 20, 200))
        draw.text(((w - bw) / 2 + pad, h / 2 - step + pad / 2), o.banner, fill=(255, 255, 255), font=font)
    return np.asarray(img)


# --- the rollout -----------------------------------------------------------------------


def _trunk_yaw(data, body_id: int) -> float:
    w, x, y, z = (float(v) for v in data.xquat[body_id])
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def render_policy(
    policy_path: str | Path,
    out_path: str | Path,
    seconds: float = 10.0,
    episode: int = 0,
    width: int = 640,
    height: int = 360,
    fps: int = 25,
    title: str = "",
    seed: int | None = None,
    task: str = config.DEFAULT_TASK,
) -> dict:
    """Roll the policy out on panel episode `episode` for `seconds` and write an MP4 (or a GIF for *.gif).

    The walk is harness.rollout's, the one scoring runs: same options, env seed, commands, start
    heading and observation patching, on one environment instead of the panel's batch (so it is
    the scored task, not a bit-identical replay of the scored episode). It stops at a fall.

    The caller must have chosen the GL backend (use_gl_backend) before mujoco is imported.
    Returns {"path", "frames", "seconds", "fell_at" (s or None), "vel_err" (mean over the steps rolled)}.
    """
    import mujoco
    import torch

    from harness.artifact import load_policy
    from harness.mujoco.env import MujocoQuadrupedEnv
    from harness.panel import make_panel
    from harness.rollout import EVAL_ENV_SEED, NonFiniteActions, eval_options, panel_rollout

    out_path = Path(out_path)
    panel = make_panel(task=task)
    if not 0 <= episode < panel.episodes:
        raise VideoError(f"episode {episode} is not on the panel (0..{panel.episodes - 1})")
    steps = max(1, min(int(round(seconds / config.CONTROL_DT)), config.EPISODE_STEPS))
    every = max(1, int(round(1.0 / (fps * config.CONTROL_DT))))  # policy steps per frame
    fps_real = 1.0 / (every * config.CONTROL_DT)

    policy = load_policy(policy_path)
    cpu = torch.device("cpu")
    env = MujocoQuadrupedEnv(eval_options(1, task), seed=EVAL_ENV_SEED if seed is None else seed,
                             device=cpu, external_commands=True, nthread=1)
    try:
        model = env.render_model
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, height)
        # a 1024 shadow map looks the same at video sizes and renders ~2x faster in software GL
        model.vis.quality.shadowsize = min(model.vis.quality.shadowsize, 1024)
        try:
            renderer = mujoco.Renderer(model, height, width)
        except Exception as exc:
            raise VideoError(f"could not create an offscreen renderer ({exc}). {INSTALL_HINT}") from exc
        trunk = model.body("trunk").id
        frames: list[np.ndarray] = []
        walk = panel_rollout(policy, env, panel, steps, cpu, episodes=slice(episode, episode + 1))
        err_sum, fell_at, n = 0.0, None, 0
        try:
            for step, command, state, terminated, _, _ in walk:
                actual = torch.cat([state.base_lin_vel[0, :2], state.base_ang_vel[0, 2:3]]).numpy()
                cmd = command[0].numpy()
                n += 1
                err_sum += float(np.linalg.norm(cmd[:2] - actual[:2]))
                done = bool(terminated[0])
                if done:
                    fell_at = (step + 1) * config.CONTROL_DT
                if step % every and not done:
                    continue
                overlay = Overlay(title, (step + 1) * config.CONTROL_DT, cmd, actual, err_sum / n)
                if done:
                    # the env has already reset this robot: keep showing the last frame drawn, marked
                    last = frames[-1] if frames else np.zeros((height, width, 3), np.uint8)
                    overlay.banner = f"FELL at {fell_at:.2f} s"
                    frames.extend([draw_overlay(last, overlay)] * max(1, int(fps_real)))
                    break
                data = env.get_data(0)
                renderer.update_scene(data, camera=CAMERA)
                yaw = _trunk_yaw(data, trunk)
                base = data.xpos[trunk] + np.array([0.0, 0.0, ARROW_HEIGHT])
                _add_arrow(renderer.scene, base, base + _planar_world(cmd[:2], yaw), COLOR_COMMAND)
                lift = np.array([0.0, 0.0, 0.04])  # the actual-velocity arrow rides just above the command
                actual_end = base + lift + _planar_world(actual[:2], yaw)
                _add_arrow(renderer.scene, base + lift, actual_end, COLOR_ACTUAL, 0.016)
                frames.append(draw_overlay(renderer.render(), overlay))
        except NonFiniteActions as e:
            raise VideoError(str(e)) from None
        finally:
            walk.close()
            renderer.close()
    finally:
        env.close()
    write_video(frames, out_path, fps_real)
    return {
        "path": str(out_path),
        "frames": len(frames),
        "seconds": n * config.CONTROL_DT,
        "fell_at": fell_at,
        "vel_err": err_sum / max(1, n),
    }


def write_video(frames: list[np.ndarray], out_path: Path, fps: float) -> Path:
    """MP4 through imageio-ffmpeg, or a GIF through Pillow when the name ends in .gif."""
    if not frames:
        raise VideoError("no frames were rendered")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if out_path.suffix.lower() == ".gif":
        from PIL import Image

        images = [Image.fromarray(f) for f in frames]
        images[0].save(out_path, save_all=True, append_images=images[1:], duration=int(round(1000 / fps)), loop=0)
        return out_path
    import imageio.v2 as imageio

    # macro_block_size 8 keeps 16:9 sizes such as 640x360 as they are
    with imageio.get_writer(out_path, fps=fps, codec="libx264", quality=7, macro_block_size=8,
                            ffmpeg_log_level="error") as writer:
        for f in frames:
            writer.append_data(f)
    return out_path


# --- which policy ----------------------------------------------------------------------


@dataclass
class Target:
    policy: Path
    label: str
    default_out: Path


def resolve_target(target: str | None, results: Path, runs: Path) -> Target:
    """A policy file from 'best' (the incumbent), a run id, a run or seed folder, or a policy file."""
    from harness.results import kept_rows, read_results
    from harness.runs import ARTIFACT_NAME, best_seed_dir

    if not target or target == "best":
        rows = read_results(results)
        chain = kept_rows(rows, scored=True)
        if not chain:
            raise VideoError(f"{results} has no scored baseline or kept run yet; name a run id or a policy file")
        row = chain[-1]
        run_dir = runs / row["run_id"]
        if not run_dir.is_dir():
            raise VideoError(f"the best run's folder {run_dir} is missing")
        seed_dir = best_seed_dir(run_dir, row)
        if seed_dir is None:
            raise VideoError(f"the best run {row['run_id']} has no {ARTIFACT_NAME} under {run_dir}")
        label = f"best: {row.get('commit', '')} {seed_dir.name}  vel_err {row.get('vel_err')}"
        return Target(seed_dir / ARTIFACT_NAME, label, seed_dir / VIDEO_NAME)

    path = Path(target)
    if not path.exists() and (runs / target).is_dir():
        path = runs / target
    if path.is_file():
        return Target(path, f"{path.parent.name}/{path.name}", path.parent / VIDEO_NAME)
    if path.is_dir():
        if (path / ARTIFACT_NAME).is_file():
            return Target(path / ARTIFACT_NAME, f"{path.parent.name}/{path.name}", path / VIDEO_NAME)
        rows = [r for r in read_results(results) if r.get("run_id") == path.name] if results.exists() else []
        seed_dir = best_seed_dir(path, rows[-1] if rows else {})
        if seed_dir is not None:
            return Target(seed_dir / ARTIFACT_NAME, f"{path.name}/{seed_dir.name}", seed_dir / VIDEO_NAME)
        raise VideoError(f"{path} holds no {ARTIFACT_NAME} (looked in it and in its seed*/ folders)")
    raise VideoError(f"{target!r} is neither a policy file, a run or seed folder, nor a run id under {runs}")


# --- CLI -------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    from harness.runs import RESULTS_FILE

    p = argparse.ArgumentParser(
        prog="evaluate.py video",
        description="Render a policy walking on a slice of the evaluation panel (offscreen, MP4 or GIF).",
    )
    p.add_argument("target", nargs="?", default="best",
                   help="best (default: the incumbent), a run id, a run/seed folder, or a policy file")
    p.add_argument("--out", type=Path, default=None,
                   help=f"output .mp4 or .gif (default: {VIDEO_NAME} in the seed folder)")
    p.add_argument("--seconds", type=float, default=10.0, help="seconds of the episode to show (default 10)")
    p.add_argument("--episode", type=int, default=0, help="panel episode (default 0)")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--results", type=Path, default=Path(RESULTS_FILE), help="default: results.tsv here")
    p.add_argument("--runs", type=Path, default=None, help="run folders (default: runs/ next to results.tsv)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    from harness.runs import RUNS_DIR, scored_task

    runs = args.runs or args.results.parent / RUNS_DIR
    # GL first: it is cheap to probe, and without it nothing else matters
    backend, failures = find_gl_backend()
    if backend is None:
        print(f"video: {gl_missing_message(failures)}", file=sys.stderr)
        return 2
    if not use_gl_backend(backend):
        # mujoco is already loaded here with another GL backend: render in a fresh process
        env = dict(os.environ, MUJOCO_GL=backend, PYOPENGL_PLATFORM=backend)
        return subprocess.run([sys.executable, "-m", "harness.video", *argv], env=env).returncode
    try:
        target = resolve_target(args.target, args.results, runs)
    except Exception as exc:  # ResultsError, VideoError: both say what is wrong
        print(f"video: {exc}", file=sys.stderr)
        return 1

    out = args.out or target.default_out
    try:
        info = render_policy(target.policy, out, seconds=args.seconds, episode=args.episode, width=args.width,
                             height=args.height, fps=args.fps, title=target.label,
                             task=scored_task(target.policy))
    except VideoError as exc:
        print(f"video: {exc}", file=sys.stderr)
        return 1
    fell = f", fell at {info['fell_at']:.2f} s" if info["fell_at"] is not None else ""
    print(f"video: {info['path']}  ({info['frames']} frames, {info['seconds']:.1f} s of panel episode "
          f"{args.episode}, MUJOCO_GL={backend}, tracking error {info['vel_err']:.3f} m/s{fell})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
