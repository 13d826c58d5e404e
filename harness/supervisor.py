"""Runs one supervised child process: heartbeat watchdog, budget margin, and no stray processes.

The child runs in its own session (process group). Its stdout/stderr go to a log file and are
echoed with a prefix; it reports progress as JSON lines on a pipe (fd in HARNESS_MSG_FD).
Whatever happens (normal end, hang, overrun, KeyboardInterrupt or SIGTERM of the parent), the
whole group is killed, plus any descendant that escaped it but still carries this run's token
in its environment.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from harness import load, threads
from harness import proc as proc_tools

# Fixed limits. Tests shrink them with HARNESS_* environment variables, which mark a run as smoke.
STARTUP_TIMEOUT_S = 900.0   # imports + simulator start (Isaac Lab's imports and Warp's first kernel builds can take minutes)
HANG_TIMEOUT_S = 120.0      # no heartbeat (env.step or ctx.log) for this long: a hang
OVERRUN_MARGIN_S = 60.0     # still training this long after the budget: killed
EXPORT_TIMEOUT_S = 300.0    # torch.export of the policy after train() returned


def _env_float(name: str, default: float) -> float:
    v = os.environ.get(name)
    return float(v) if v else default


@dataclass(frozen=True)
class Limits:
    startup_s: float = STARTUP_TIMEOUT_S
    hang_s: float = HANG_TIMEOUT_S
    overrun_s: float = OVERRUN_MARGIN_S
    export_s: float = EXPORT_TIMEOUT_S

    @classmethod
    def from_env(cls) -> "Limits":
        return cls(
            startup_s=_env_float("HARNESS_STARTUP_TIMEOUT_S", STARTUP_TIMEOUT_S),
            hang_s=_env_float("HARNESS_HANG_TIMEOUT_S", HANG_TIMEOUT_S),
            overrun_s=_env_float("HARNESS_OVERRUN_MARGIN_S", OVERRUN_MARGIN_S),
            export_s=_env_float("HARNESS_EXPORT_TIMEOUT_S", EXPORT_TIMEOUT_S),
        )


@dataclass
class WorkerResult:
    ok: bool
    reason: str | None = None      # crash reason when not ok: hang..., timeout..., exception: ..., bad_return: ..., nan...
    startup_s: float | None = None
    train_s: float | None = None
    env_steps: int = 0
    exit_code: int | None = None
    scalars: dict = field(default_factory=dict)  # the last ctx.log() values
    foreign_share: float | None = None  # CPU share other processes used meanwhile (harness.load)


class _Terminated(Exception):
    pass


def _on_sigterm(signum, frame):
    raise _Terminated()


def _descendants_with_token(token: str) -> list[int]:
    me, found = os.getpid(), []
    needle = f"HARNESS_RUN_TOKEN={token}".encode()
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return found


def kill_tree(proc: subprocess.Popen, token: str) -> None:
    """Kill the child's process group and every process carrying the run token."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:  # SIGKILL is asynchronous: repeat until none is left
        strays = [pid for pid in _descendants_with_token(token) if not _is_zombie(pid)]
        if not strays:
            break
        for pid in strays:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.05)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] in ("Z", "X")
    except OSError:
        return True


def _pump_output(stream, log_path: Path, echo) -> None:
    with open(log_path, "ab") as log:
        for raw in iter(stream.readline, b""):
            log.write(raw)
            log.flush()
            if echo is not None:
                echo(raw.decode("utf-8", errors="replace").rstrip("\n"))


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def run_supervised(cmd: list[str], log_path, budget_s: float, limits: Limits | None = None,
                   echo=None, on_progress=None, env: dict | None = None, cwd=None) -> WorkerResult:
    """Run cmd (a worker speaking the message protocol) to its end, or kill it. Never leaves it running."""
    limits = limits or Limits.from_env()
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    read_fd, write_fd = os.pipe()
    child_env = threads.child_env(dict(os.environ if env is None else env))
    child_env.update(HARNESS_MSG_FD=str(write_fd), HARNESS_RUN_TOKEN=token, HARNESS_WORKER="1",
                     PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
    result = WorkerResult(ok=False)
    spawned = time.monotonic()
    meter = load.Meter()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    proc = proc_tools.spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, pass_fds=(write_fd,), env=child_env, cwd=cwd)
    os.close(write_fd)
    meter.pid = proc.pid
    pump = threading.Thread(target=_pump_output, args=(proc.stdout, log_path, echo), daemon=True)
    pump.start()
    buffer = b""
    started = trained = None
    last_beat = spawned
    final = None  # the done/error message
    try:
        while True:
            ready, _, _ = select.select([read_fd], [], [], 0.2)
            meter.poll()
            if proc_tools.CANCEL.is_set():  # Ctrl-C while slots run (harness.slots)
                raise KeyboardInterrupt
            now = time.monotonic()
            if ready:
                chunk = os.read(read_fd, 65536)
                if not chunk:  # every writer closed: the child (and its children) ended
                    break
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    try:
                        msg = json.loads(line)
                    except ValueError:
                        continue
                    if not isinstance(msg, dict):
                        continue
                    last_beat = now
                    kind = msg.get("type")
                    # Times are the supervisor's own clock, and steps are the harness env's count
                    # (not ctx.log's argument), which only ever grows: nothing train.py resets in its
                    # process shortens the recorded time or the steps.
                    steps = msg.get("env_steps")
                    if kind in ("beat", "trained", "done") and isinstance(steps, (int, float)) and steps == steps:
                        result.env_steps = max(result.env_steps, int(steps))
                    if kind == "start" and started is None:
                        started = now
                        result.startup_s = now - spawned
                    elif kind == "log":
                        result.scalars = dict(msg.get("scalars") or {})
                    elif kind == "trained" and started is not None and trained is None:
                        trained = now
                    elif kind in ("done", "error") and final is None:
                        final = msg
                    if on_progress is not None and started is not None and trained is None and kind in ("log", "beat"):
                        on_progress(now - started, result.env_steps, result.scalars)
            if final is not None or (proc.poll() is not None and not ready):
                break
            if started is None:
                if now - spawned > limits.startup_s:
                    result.reason = f"hang: start-up took over {limits.startup_s:.0f} s"
                    break
            elif now - started > budget_s + limits.overrun_s:  # the whole life after start, export included
                result.reason = f"timeout: still running {limits.overrun_s:.0f} s after the {budget_s:.0f} s budget"
                break
            elif trained is None:
                if now - last_beat > limits.hang_s:
                    result.reason = f"hang: no heartbeat for {limits.hang_s:.0f} s"
                    break
            elif now - trained > limits.export_s:
                result.reason = f"hang: export took over {limits.export_s:.0f} s"
                break
        if final is not None:
            try:
                proc.wait(timeout=min(30.0, limits.export_s))
            except subprocess.TimeoutExpired:
                pass
    except (KeyboardInterrupt, _Terminated):
        kill_tree(proc, token)
        raise KeyboardInterrupt from None
    finally:
        ended = time.monotonic()
        meter.poll()
        kill_tree(proc, token)
        proc_tools.LIVE.discard(proc.pid)
        proc_tools.kill_strays()
        os.close(read_fd)
        pump.join(timeout=5)
        result.foreign_share = meter.share()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    result.exit_code = proc.returncode
    if started is not None:  # from the first line of train.py to the end of export, as observed here
        result.train_s = ended - started
    if final is not None:
        if final.get("type") == "done":
            result.ok = True
        else:
            result.reason = str(final.get("reason") or "exception: unknown")
    elif result.reason is None:
        code = proc.returncode
        how = f"killed by {_signal_name(code)}" if code is not None and code < 0 else f"exit code {code}"
        result.reason = f"exception: the training process died ({how}); see {log_path.name}"
    return result
