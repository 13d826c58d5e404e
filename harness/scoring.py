"""Scores a policy artifact on the fixed panel, in its own process; or several on a held-out panel.

    python -m harness.scoring --policy runs/<id>/seed1/policy.pt2 --out metrics.json [--task flat|rough]
                              [--backend mujoco] [--device cpu]
    python -m harness.scoring --held-out a.pt2 b.pt2 ... --out held_out.json [--task ...] [--backend ...] [--seed N]

It loads only the artifact (harness.artifact), builds the harness's evaluation environment
(the task's terrain, no observation noise, no randomisation, commands injected from harness/panel.py;
on rough each episode on its panel level) and runs every panel episode for 20 s through
harness.rollout, the walk the video shows too.

Metrics (every mean is over policy steps of every panel episode):
  vel_err     ||cmd_xy - base_lin_vel_xy (body)||; after a fall, ||cmd_xy|| (standing still) for the rest
  yaw_err     |cmd_yaw - base_ang_vel_z|; after a fall, |cmd_yaw|
  survival    fraction of episodes with no termination
  torque      mean |joint torque| (N m) while alive;  power: mean sum |torque * joint velocity| (W)
  foot_slip   mean planar speed (m/s) of feet in contact, while alive
  standing_still  vel_err of a robot that never moves: mean ||cmd_xy|| over the same steps
  gait        "ok" or flags, judged on alive steps whose command speed is >= MOVING_COMMAND:
    hopping      no foot touches on >= HOPPING_FLIGHT of those steps (pronking / hopping gaits)
    lifted_leg   one foot touches on < LIFTED_CONTACT of all alive steps (a leg held up: three-leg hopping)
    dragged_leg  one foot touches on >= DRAGGED_CONTACT of the steps where the base moves >= MOVING_BASE
                 m/s (it never lifts: dragged), judged only if the base moves on >= MIN_WALKING_SHARE of them
    backwards    the base moves against the command (v . cmd_dir < -BACKWARDS_SPEED) on >= BACKWARDS_FRACTION
  breakdown   where the error comes from: falls, command switches, steady walking, command types
              (harness.diagnose)

The held-out check (--held-out) draws its commands and start headings here, from a fresh random
seed (written as panel_seed; --seed replays it), so neither training nor the agent can know them.
Every policy walks HELD_OUT_EPISODES of them under each config.HELD_OUT_CONDITIONS (nominal, pushes,
low and high foot friction, added trunk mass, observation noise), each in a fresh env with the same
seed, so all policies meet exactly the same panel. held_out is vel_err over all those episodes,
by_condition the vel_err of each condition, survival the fraction of them with no termination.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness import proc as proc_tools
from harness import threads
from harness.config import DEFAULT_TASK, TASKS
from harness.runs import DEFAULT_BACKEND

EVAL_TIMEOUT_S = 900.0
# MuJoCo: panels are walked on C MuJoCo (PGS, float64) on every device, a policy trained with MuJoCo
# Warp on a GPU included, so vel_err means the same on every machine (README, "The GPU").
SCORING_STEPPER = "mujoco"


def _stepper(backend: str) -> dict:
    return {"stepper": SCORING_STEPPER} if backend == "mujoco" else {}  # a MuJoCo-only choice
HELD_OUT_TIMEOUT_S = 1800.0
MOVING_COMMAND = 0.3       # m/s command speed above which a step counts as "moving" for the gait check
MOVING_BASE = 0.2          # m/s
MIN_GAIT_STEPS = 50        # below this many judged steps, no flag is raised
MIN_WALKING_SHARE = 0.2    # dragged_leg is judged only if the base moves on this share of moving steps
GAIT_SKIP_STEPS = 25       # the first 0.5 s (the drop onto the ground) is not judged
HOPPING_FLIGHT = 0.3
LIFTED_CONTACT = 0.05
DRAGGED_CONTACT = 0.97
BACKWARDS_SPEED = 0.1
BACKWARDS_FRACTION = 0.25


class EvalError(RuntimeError):
    """Evaluation could not score the policy; str() starts with a crash reason (nan, exception: ...)."""


def panel_size() -> tuple[int | None, int | None]:
    """Test-only overrides (HARNESS_PANEL_EPISODES, HARNESS_EVAL_STEPS); runs using them are smoke."""
    e, s = os.environ.get("HARNESS_PANEL_EPISODES"), os.environ.get("HARNESS_EVAL_STEPS")
    return (int(e) if e else None), (int(s) if s else None)


def gait_flags(stats: dict) -> list[str]:
    """Degenerate-gait flags from the counts gathered during evaluation (see the module doc)."""
    flags = []
    moving, alive = stats["moving_steps"], stats["alive_steps"]
    if moving >= MIN_GAIT_STEPS:
        if stats["flight_steps"] / moving >= HOPPING_FLIGHT:
            flags.append("hopping")
        if stats["backwards_steps"] / moving >= BACKWARDS_FRACTION:
            flags.append("backwards")
    if alive >= MIN_GAIT_STEPS and min(stats["foot_contact_steps"]) / alive < LIFTED_CONTACT:
        flags.append("lifted_leg")
    walking = stats["walking_steps"]
    if walking >= max(MIN_GAIT_STEPS, MIN_WALKING_SHARE * moving) and max(stats["walking_contact_steps"]) / walking >= DRAGGED_CONTACT:
        flags.append("dragged_leg")
    return flags


def _load(policy_path, device):
    from harness import artifact

    try:
        policy = artifact.load_policy(policy_path)
    except artifact.ArtifactError as e:
        raise EvalError(f"exception: {e}") from None
    return policy if device.type == "cpu" else policy.to(device)


def evaluate_policy(policy_path, backend: str = DEFAULT_BACKEND, device: str = "cpu",
                    episodes: int | None = None, steps: int | None = None, per_episode: bool = False,
                    task: str = DEFAULT_TASK) -> dict:
    """Run the panel with the artifact at policy_path and return the metrics (per_episode: also
    vel_err_episodes, each episode's vel_err, for benchmarks). Raises EvalError."""
    import torch

    from harness import artifact, backends, config
    from harness.diagnose import Breakdown
    from harness.panel import make_panel
    from harness.rollout import EVAL_ENV_SEED, NonFiniteActions, Tracking, eval_options, panel_rollout

    t0 = time.monotonic()
    device = torch.device(device)
    policy = _load(policy_path, device)
    panel = make_panel(episodes=episodes or config.PANEL_EPISODES, task=task)
    steps = min(steps or config.EPISODE_STEPS, config.EPISODE_STEPS)
    E = panel.episodes
    backends.start_backend(backend, device)
    env = backends.make_env(backend, eval_options(E, task), seed=EVAL_ENV_SEED, device=device, external_commands=True,
                            **_stepper(backend))
    z = lambda: torch.zeros((), dtype=torch.float64)  # noqa: E731
    sums = {k: z() for k in ("yaw", "still", "alive", "torque", "power", "slip", "slip_n")}
    stats = {"moving_steps": 0, "alive_steps": 0, "flight_steps": 0, "backwards_steps": 0, "walking_steps": 0,
             "foot_contact_steps": torch.zeros(4, dtype=torch.float64),
             "walking_contact_steps": torch.zeros(4, dtype=torch.float64)}
    track, breakdown = Tracking(E, device), Breakdown(panel)
    try:
        for s in panel_rollout(policy, env, panel, steps, device):
            step, cmd, state = s.step, s.command, s.state
            alive = track.add(s)
            breakdown.add(step, track.last_err, alive, s.terminated)
            cmd_xy = cmd[:, :2]
            cmd_speed = cmd_xy.norm(dim=-1)
            v_xy = state.base_lin_vel[:, :2]
            yaw = torch.where(alive, (cmd[:, 2] - state.base_ang_vel[:, 2]).abs(), cmd[:, 2].abs())
            sums["yaw"] += yaw.sum().double().cpu()
            sums["still"] += cmd_speed.sum().double().cpu()
            a = alive.cpu()
            tau, qd = state.torques.cpu()[a], state.joint_vel.cpu()[a]
            sums["alive"] += a.sum().double()
            sums["torque"] += tau.abs().mean(dim=-1).sum().double()
            sums["power"] += (tau * qd).abs().sum(dim=-1).sum().double()
            contact = state.foot_contact.cpu()[a]
            foot_speed = state.foot_vel.cpu()[a][..., :2].norm(dim=-1)
            sums["slip"] += (foot_speed * contact).sum().double()
            sums["slip_n"] += contact.sum().double()
            if step >= GAIT_SKIP_STEPS:
                stats["alive_steps"] += int(a.sum())
                stats["foot_contact_steps"] += contact.sum(dim=0).double()
            moving = a & (cmd_speed.cpu() >= MOVING_COMMAND)
            if step >= GAIT_SKIP_STEPS and moving.any():
                c = state.foot_contact.cpu()[moving]
                direction = cmd_xy.cpu()[moving] / cmd_speed.cpu()[moving, None]
                along = (v_xy.cpu()[moving] * direction).sum(dim=-1)
                stats["moving_steps"] += int(moving.sum())
                stats["flight_steps"] += int((~c.any(dim=-1)).sum())
                stats["backwards_steps"] += int((along < -BACKWARDS_SPEED).sum())
                walking = v_xy.cpu()[moving].norm(dim=-1) >= MOVING_BASE
                stats["walking_steps"] += int(walking.sum())
                stats["walking_contact_steps"] += c[walking].sum(dim=0).double()
    except NonFiniteActions as e:
        raise EvalError(f"nan: the policy output NaN/inf actions at panel step {e.step}") from None
    finally:
        env.close()
    n = E * steps
    alive_n = max(stats["alive_steps"], 1)
    flags = gait_flags({**stats, "foot_contact_steps": stats["foot_contact_steps"].tolist(),
                        "walking_contact_steps": stats["walking_contact_steps"].tolist()})
    vel = track.vel_err()
    metrics = {
        "vel_err": float(vel.mean()),
        "yaw_err": float(sums["yaw"]) / n,
        "survival": float(track.alive.float().mean()),
        "torque": float(sums["torque"]) / max(float(sums["alive"]), 1.0),
        "power": float(sums["power"]) / max(float(sums["alive"]), 1.0),
        "foot_slip": float(sums["slip"]) / max(float(sums["slip_n"]), 1.0),
        "gait": ",".join(flags) if flags else "ok",
        "gait_stats": {  # over alive steps after GAIT_SKIP_STEPS
            "foot_contact_fraction": [round(x / alive_n, 4) for x in stats["foot_contact_steps"].tolist()],
            "flight_fraction": round(stats["flight_steps"] / max(stats["moving_steps"], 1), 4),
            "backwards_fraction": round(stats["backwards_steps"] / max(stats["moving_steps"], 1), 4),
        },
        "standing_still": float(sums["still"]) / n,
        "breakdown": breakdown.result(vel, track.alive),
        "episodes": E,
        "steps": steps,
        "task": task,
        "backend": backend,
        "eval_seconds": round(time.monotonic() - t0, 2),
        "policy_sha256": artifact.fingerprint(policy),
    }
    if per_episode:
        metrics["vel_err_episodes"] = vel.tolist()
    return metrics


def held_out(policy_paths, backend: str = DEFAULT_BACKEND, device: str = "cpu", seed: int | None = None,
             episodes: int | None = None, steps: int | None = None, task: str = DEFAULT_TASK) -> dict:
    """Score every artifact on one held-out panel drawn now from seed (fresh when None); see the
    module doc. Raises EvalError."""
    import torch

    from harness import artifact, backends, config
    from harness.panel import make_panel
    from harness.rollout import NonFiniteActions, Tracking, eval_options, panel_rollout

    t0 = time.monotonic()
    device = torch.device(device)
    seed = secrets.randbits(32) if seed is None else int(seed)   # < 2**32: Isaac seeds numpy with it
    policies = {str(p): _load(p, device) for p in policy_paths}
    panel = make_panel(seed=seed, episodes=episodes or config.HELD_OUT_EPISODES, task=task)
    steps = min(steps or config.EPISODE_STEPS, config.EPISODE_STEPS)
    backends.start_backend(backend, device)
    scores = {}
    for path, policy in policies.items():
        by_condition, vel, survived = {}, [], []
        for name, changes in config.HELD_OUT_CONDITIONS.items():
            # a fresh env with the same seed per policy: the same spawns, pushes and noise for all
            env = backends.make_env(backend, eval_options(panel.episodes, task, **changes), seed=seed, device=device,
                                    external_commands=True, **_stepper(backend))
            track = Tracking(panel.episodes, device)
            try:
                for s in panel_rollout(policy, env, panel, steps, device):
                    track.add(s)
            except NonFiniteActions as e:
                raise EvalError(f"nan: {path} output NaN/inf actions at held-out step {e.step} ({name})") from None
            finally:
                env.close()
            vel.append(track.vel_err())
            survived.append(track.alive.cpu())
            by_condition[name] = float(vel[-1].mean())
        scores[path] = {"held_out": float(torch.cat(vel).mean()), "survival": float(torch.cat(survived).double().mean()),
                        "by_condition": by_condition, "policy_sha256": artifact.fingerprint(policy)}
    return {"panel_seed": seed, "episodes_per_condition": panel.episodes, "steps": steps,
            "conditions": list(config.HELD_OUT_CONDITIONS), "policies": scores, "task": task, "backend": backend,
            "eval_seconds": round(time.monotonic() - t0, 2)}


def run_evaluation(policy_path, out_json, backend: str = DEFAULT_BACKEND, device: str = "cpu",
                   log_path=None, timeout_s: float = EVAL_TIMEOUT_S, env: dict | None = None,
                   task: str = DEFAULT_TASK) -> dict:
    """Score in a fresh process (which loads only the artifact). Raises EvalError with a crash reason."""
    args = ["--policy", str(policy_path), "--task", task, "--backend", backend, "--device", str(device)]
    return _run_child(args, out_json, log_path or Path(out_json).with_name("eval.log"), timeout_s, env)


def run_held_out(policy_paths, out_json, backend: str = DEFAULT_BACKEND, device: str = "cpu", log_path=None,
                 timeout_s: float = HELD_OUT_TIMEOUT_S, env: dict | None = None, seed: int | None = None,
                 task: str = DEFAULT_TASK) -> dict:
    """The held-out check of several artifacts on one shared panel, in a fresh process; the result
    names its panel_seed (pass it as seed to replay). Raises EvalError with a crash reason."""
    args = ["--held-out", *map(str, policy_paths), "--task", task, "--backend", backend, "--device", str(device)]
    if seed is not None:
        args += ["--seed", str(seed)]
    return _run_child(args, out_json, log_path or Path(out_json).with_suffix(".log"), timeout_s, env)


def _run_child(args: list[str], out_json, log_path, timeout_s: float, env: dict | None) -> dict:
    out_json, log_path = Path(out_json), Path(log_path)
    out_json.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "harness.scoring", *args, "--out", str(out_json)]
    env = {**threads.child_env(dict(os.environ if env is None else env)), "PYTHONDONTWRITEBYTECODE": "1"}
    with open(log_path, "ab") as log:
        proc = proc_tools.spawn(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env, cwd=Path(__file__).resolve().parent.parent)
        deadline = time.monotonic() + timeout_s
        try:
            while proc.poll() is None:
                if proc_tools.CANCEL.is_set():   # Ctrl-C while slots run (harness.slots)
                    raise KeyboardInterrupt
                if time.monotonic() > deadline:
                    raise EvalError(f"hang: evaluation took over {timeout_s:.0f} s")
                time.sleep(0.1)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
            proc_tools.LIVE.discard(proc.pid)
    try:
        metrics = json.loads(out_json.read_text())
    except (OSError, ValueError):
        raise EvalError(f"exception: evaluation died (exit code {proc.returncode}); see {log_path}") from None
    if "error" in metrics:
        raise EvalError(metrics["error"])
    return metrics


def _nonfinite(d: dict, prefix: str = "") -> str | None:
    """The key of the first non-finite float in d (dotted through nested dicts), or None."""
    for k, v in d.items():
        bad = _nonfinite(v, f"{prefix}{k}.") if isinstance(v, dict) else None
        if bad or (isinstance(v, float) and not math.isfinite(v)):
            return bad or prefix + k
    return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--policy", help="score this artifact on the fixed panel")
    which.add_argument("--held-out", nargs="+", metavar="POLICY", help="score these on one fresh held-out panel")
    p.add_argument("--out", required=True)
    p.add_argument("--task", choices=TASKS, default=DEFAULT_TASK)
    p.add_argument("--backend", default=DEFAULT_BACKEND)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, help="with --held-out: replay the panel of this panel_seed")
    args = p.parse_args(argv)
    if args.seed is not None and not (args.held_out and 0 <= args.seed < 2**32):
        p.error("--seed takes a held-out panel_seed (0 <= N < 2**32) and goes with --held-out")
    from harness.proc import die_with_parent

    die_with_parent()
    threads.configure(args.device)
    episodes, steps = panel_size()
    try:
        if args.held_out:
            metrics = held_out(args.held_out, args.backend, args.device, args.seed, episodes, steps, task=args.task)
        else:
            metrics = evaluate_policy(args.policy, args.backend, args.device, episodes, steps, task=args.task)
        code = 0
    except EvalError as e:
        metrics, code = {"error": str(e)}, 1
    except Exception as e:  # an env failure: report it as a crash reason, never a score
        import traceback

        traceback.print_exc()
        metrics, code = {"error": f"exception: evaluation: {type(e).__name__}: {e}"[:300]}, 1
    bad = _nonfinite(metrics)
    if bad:
        metrics, code = {"error": f"nan: metric {bad} is not finite"}, 1
    tmp = Path(args.out + ".tmp")
    tmp.write_text(json.dumps(metrics, indent=1))
    tmp.replace(args.out)
    return code


if __name__ == "__main__":
    sys.exit(main())
