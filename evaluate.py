"""The fixed harness's entry point. The research agent never edits this file or harness/.

train.py ends with:

    if __name__ == "__main__":
        evaluate.run(train)

and the harness takes over: budget, seeds, device, supervised training, evaluation, results.tsv
and the keep/discard verdict (see harness/experiment.py).

Commands:
    uv run train.py [--smoke] [--budget S] [--backend mujoco|isaaclab] [--device cpu|cuda]
                    [--slots N] [--cluster auto|ADDRESS]         N seeds at once, here or as Ray tasks
    uv run evaluate.py run [same options]                        the same experiment, started by the harness:
                                                                 also records a train.py that does not parse
    uv run evaluate.py score <run_dir | seed_dir | policy.pt2>   re-score a saved policy (on the task it was scored on;
                                                                 --task flat|rough to choose)
    uv run evaluate.py <path>                                    the same
    uv run evaluate.py diagnose <run_dir | seed_dir | policy.pt2>
                                                                 re-score, and say where the error comes from:
                                                                 falls, command switches, steady walking, command types
    uv run evaluate.py apply                                     apply the last verdict with git
    uv run evaluate.py floor [--seeds N] [--rerun K ...]          the incumbent on the seeds it lacks (the noise
                                                                 floor); --rerun drops seed K's scores, runs it again
    uv run evaluate.py report [--json]                           the morning report
    uv run evaluate.py video [RUN_ID|best|policy.pt2] [--out FILE] [--seconds S]
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def _initial_environment() -> dict:
    """The environment this process started with, not one train.py changed at import time."""
    try:
        raw = Path("/proc/self/environ").read_bytes()
    except OSError:
        return dict(os.environ)
    env = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            env[os.fsdecode(key)] = os.fsdecode(value)
    return env


def run(train) -> None:
    """Hand train.py's `train` function to the harness. Never returns.

    The process is replaced at once by a fresh orchestrator (`python -m harness.experiment`), so
    nothing train.py changed in this interpreter (monkey-patches, seeds) reaches the scoring.
    """
    if os.environ.get("HARNESS_WORKER"):
        raise RuntimeError("evaluate.run() was called inside the training worker; call it only under "
                           "`if __name__ == \"__main__\":` at the end of train.py")
    source = Path(inspect.getsourcefile(train) or sys.argv[0]).resolve()
    if source.parent != ROOT:
        raise RuntimeError(f"{source} is not in the harness's repository {ROOT}")
    _hand_over(source)


def _hand_over(script: Path) -> None:
    """Replace this process with a fresh orchestrator that trains `script` as HEAD has it."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.chdir(ROOT)
    args = [sys.executable, "-m", "harness.experiment", "--train", script.name, *sys.argv[1:]]
    os.execve(sys.executable, args, _initial_environment())


def _script_being_launched() -> Path | None:
    """The repository script run as `python train.py` that is importing this module, if any."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path or getattr(main, "__spec__", None) is not None or os.environ.get("HARNESS_WORKER"):
        return None  # `python -m ...`, an interactive session, or the training worker
    path = Path(path).resolve()
    if path.parent != ROOT or path.suffix != ".py" or path.name == Path(__file__).name:
        return None
    return path


def _score(argv, diagnose: bool = False) -> int:
    from harness import summary
    from harness.diagnose import report_lines, summary_values
    from harness.backends import default_device
    from harness.display import Display
    from harness.config import TASKS
    from harness.runs import ARTIFACT_NAME, DEFAULT_BACKEND, DEVICES, scored_task
    from harness.scoring import EvalError, run_evaluation

    p = argparse.ArgumentParser(prog=f"uv run evaluate.py {'diagnose' if diagnose else 'score'}")
    p.add_argument("path", help="a run folder, a seed folder, or a policy artifact")
    p.add_argument("--task", choices=TASKS, default=None, help="default: the task each policy was scored on")
    p.add_argument("--backend", default=DEFAULT_BACKEND)
    p.add_argument("--device", choices=DEVICES, default=None)
    args = p.parse_args(argv)
    path = Path(args.path)
    if path.is_file():
        policies = [path]
    elif (path / ARTIFACT_NAME).is_file():
        policies = [path / ARTIFACT_NAME]
    else:
        policies = sorted(path.glob(f"seed*/{ARTIFACT_NAME}"))
    display = Display()
    if not policies:
        display.line(f"error: no {ARTIFACT_NAME} at {path} (nor in its seed*/ folders)")
        return 2
    import tempfile

    device = args.device or default_device()
    scores = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, policy in enumerate(policies):
            task = args.task or scored_task(policy)
            display.line(f"scoring {policy} on the {task} panel ({args.backend}/{device})")
            try:
                m = run_evaluation(policy, Path(tmp) / f"metrics{i}.json", args.backend, device,
                                   log_path=Path(tmp) / f"eval{i}.log", task=task)
            except EvalError as e:
                display.line(f"{policy}: crash: {e}")
                scores.append(None)
                continue
            scores.append(m)
            if diagnose:
                for line in report_lines(m):
                    display.line(line)
    ok = [m for m in scores if m]
    if not ok:
        return 1
    values = {k: sum(m[k] for m in ok) / len(ok) for k in ("vel_err", "standing_still", "yaw_err", "survival",
                                                             "torque", "power", "foot_slip")}
    display.summary(summary.block(summary.SCORE_KEYS, {
        **values, **summary_values([m["breakdown"] for m in ok]),
        "gait": ";".join(m["gait"] for m in ok), "policies": len(policies),
        "seed_scores": ";".join("crash" if m is None else f"{m['vel_err']:.4f}" for m in scores),
        "task": ",".join(sorted({m["task"] for m in ok})), "backend": args.backend,
    }))
    return 0


USAGE = __doc__[__doc__.index("Commands:"):]


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "report":
        from harness.report import main as report_main

        return report_main(rest)
    if command == "video":
        from harness.video import main as video_main

        return video_main(rest)
    if command in ("score", "diagnose"):
        return _score(rest, diagnose=command == "diagnose")
    if command == "run":
        from harness.experiment import main as experiment_main

        os.chdir(ROOT)
        return experiment_main(rest)
    from harness import backends, experiment, gitops, integrity, results, settings
    from harness.display import Display

    display = Display()
    experiment.become_orchestrator()
    try:
        if command == "apply":
            with integrity.checkout_lock(ROOT, "uv run evaluate.py apply"):
                return experiment.apply_verdict(ROOT, display)
        if command == "floor":
            p = argparse.ArgumentParser(prog="uv run evaluate.py floor")
            p.add_argument("--seeds", type=int, default=None,
                           help="seeds to add (default: those of 1..MAX_SEEDS the incumbent lacks)")
            p.add_argument("--rerun", type=int, nargs="+", default=[], metavar="K",
                           help="drop the incumbent's scores on these seeds (a run you know was bad) and run them again")
            settings.add_run_options(p)
            args = p.parse_args(rest)
            with integrity.checkout_lock(ROOT, "uv run evaluate.py floor"):
                return experiment.run_floor(ROOT, settings.make_settings(args), args.seeds, display, rerun=args.rerun)
    except (gitops.GitError, results.ResultsError, settings.UsageError, backends.BackendError,
            integrity.LockedError) as e:
        display.line(f"error: {e}")
        return 2
    except KeyboardInterrupt:
        display.line("interrupted")
        return 130
    if Path(command).exists():
        return _score(argv)
    print(f"unknown command or path {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


# `python train.py` hands over here, at train.py's `import evaluate`, so none of train.py's own code
# runs in this process (the orchestrator refuses a train.py with code above that import).
if __name__ != "__main__" and (_launched := _script_being_launched()) is not None:
    _hand_over(_launched)

if __name__ == "__main__":
    sys.exit(main())
