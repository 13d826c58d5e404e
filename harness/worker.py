"""The training worker: one seed of one train.py, run under harness.supervisor.

    python -m harness.worker --train runs/<id>/train.py --seed 1 --out runs/<id>/seed1 \
        --task flat --backend mujoco --device cpu --budget 300 [--smoke]

It boots the backend, imports train.py by path (so its `if __name__ == "__main__"` block does not
run), seeds random/numpy/torch with the harness seed, calls train(ctx), exports the returned
module with harness.artifact (policy.pt2, checked there). It reports to the supervisor as JSON lines
on the file descriptor in HARNESS_MSG_FD: start, beat, log, trained, done, or error (with a reason).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import sys
import time
import traceback
from pathlib import Path

from harness import config
from harness.proc import die_with_parent
from harness.runs import ARTIFACT_NAME, DEFAULT_BACKEND
from harness.seccomp import refuse_keyring_and_mqueue

ROOT = Path(__file__).resolve().parent.parent

EXPORT_CHECK_BATCH = 8


class Channel:
    def __init__(self, fd: int | None):
        self.fd = fd

    def send(self, message: dict) -> None:
        if self.fd is None:
            return
        data = (json.dumps(message) + "\n").encode()
        try:
            os.write(self.fd, data)
        except OSError:
            pass


class BadReturn(Exception):
    pass


class NanPolicy(Exception):
    pass


def _short_exception(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}".strip()
    return " ".join(text.split())[:300]


def import_train(path: Path):
    spec = importlib.util.spec_from_file_location("train", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["train"] = module
    spec.loader.exec_module(module)
    fn = getattr(module, "train", None)
    if not callable(fn):
        raise BadReturn(f"{path.name} defines no train(ctx) function")
    return fn


def export(policy, path: Path) -> None:
    """Export the trained module with harness.artifact, refusing one whose actions are NaN/inf."""
    import torch

    from harness import artifact, config

    if isinstance(policy, torch.nn.Module):
        probe = torch.randn(EXPORT_CHECK_BATCH, config.OBS_DIM, generator=torch.Generator().manual_seed(0))
        try:
            with torch.no_grad():
                out = policy.cpu().eval()(probe)
        except Exception:
            out = None  # artifact.export_policy reports a broken forward() with its own message
        if isinstance(out, torch.Tensor) and out.is_floating_point() and not torch.isfinite(out).all():
            raise NanPolicy("nan: the returned policy outputs NaN/inf actions")
    try:
        artifact.export_policy(policy, path)
    except artifact.ArtifactError as e:
        raise BadReturn(" ".join(str(e).split())[:300]) from None


def main(argv=None) -> int:
    die_with_parent()
    why = refuse_keyring_and_mqueue()  # first, while this process has one thread: its threads inherit it
    if why:
        print(f"harness: {why}; the kernel keyring and POSIX message queues stay open to train.py", flush=True)
    p = argparse.ArgumentParser()
    p.add_argument("--train", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--task", default=config.DEFAULT_TASK, choices=config.TASKS)
    p.add_argument("--backend", default=DEFAULT_BACKEND)
    p.add_argument("--device", default="cpu")
    p.add_argument("--budget", type=float, required=True)
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args(argv)
    fd = os.environ.get("HARNESS_MSG_FD")
    channel = Channel(int(fd) if fd else None)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    train_path = Path(args.train).resolve()
    os.chdir(out)  # train.py's working folder is its seed folder, the one place it may write
    sys.dont_write_bytecode = True  # nothing the harness later imports may come from a .pyc written here
    try:
        import numpy as np
        import torch
        import torch._dynamo  # noqa: F401  torch.optim imports it lazily (seconds); pay that before the clock

        from harness import backends, guard, threads
        from harness.context import TrainContext

        device = torch.device(args.device)
        threads.configure(args.device)
        backends.start_backend(args.backend, device)
        backends.warm_training(args.backend, device)
        ctx = TrainContext(args.seed, device, args.backend, args.budget, args.smoke, channel.send, out / "curves.csv",
                           task=args.task)
    except BaseException as e:  # backend failures
        traceback.print_exc()
        channel.send({"type": "error", "reason": f"exception: {_short_exception(e)}"})
        return 1

    # The budget starts here, before train.py's first line: work done at import time counts.
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    channel.send({"type": "start", "time": time.time()})
    ctx.start_clock()
    guard.install(ROOT, out, train_path)
    sys.path.insert(0, str(ROOT))  # train.py imports evaluate (and harness) from the repo root
    try:
        train = import_train(train_path)
        policy = train(ctx)
    except BadReturn as e:
        channel.send({"type": "error", "reason": f"bad_return: {e}"})
        return 1
    except BaseException as e:
        traceback.print_exc()
        channel.send({"type": "error", "reason": f"exception: {_short_exception(e)}", "train_s": ctx.elapsed()})
        return 1
    train_s = ctx.elapsed()
    channel.send({"type": "trained", "train_s": train_s, "env_steps": ctx.env_steps()})
    try:
        export(policy, out / ARTIFACT_NAME)
    except BadReturn as e:
        channel.send({"type": "error", "reason": f"bad_return: {e}", "train_s": train_s})
        return 1
    except NanPolicy as e:
        channel.send({"type": "error", "reason": str(e), "train_s": train_s})
        return 1
    except BaseException as e:
        traceback.print_exc()
        channel.send({"type": "error", "reason": f"exception: export: {_short_exception(e)}", "train_s": train_s})
        return 1
    channel.send({"type": "done", "train_s": train_s, "env_steps": ctx.env_steps()})
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip interpreter teardown: simulator threads must not delay the exit
