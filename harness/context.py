"""What train(ctx) gets from the harness: the seed, the device, the budget clock, environments, logging.

    def train(ctx):
        env = ctx.make_env(num_envs=256, terrain=ctx.task) # options: harness.config.EnvOptions
        obs = env.reset()
        while not ctx.time_up():
            ...                                            # collect, update
            ctx.log(env_steps, reward=..., vel_err=..., **{"rew/track_lin_vel": ...})
        return policy                                      # nn.Module: (B, 48) -> (B, 12)

ctx.task is the branch's task ("flat" or "rough"): the terrain the policy will be scored on. It is
the harness's choice; train.py may train on any terrain.
The budget clock starts when train(ctx) is called; imports and simulator start-up do not count.
Stepping an environment and calling ctx.log() both tell the supervisor that training is alive.
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import torch

from harness import backends, config

HEARTBEAT_INTERVAL_S = 1.0


class TrainContext:
    def __init__(self, seed: int, device: torch.device, backend: str, budget_s: float, smoke: bool,
                 send=None, curves_path: Path | None = None, task: str = config.DEFAULT_TASK):
        self.seed = seed
        self.task = task
        self.device = torch.device(device)
        self.backend = backend
        self.budget_s = float(budget_s)
        self.smoke = smoke
        self._send = send or (lambda message: None)
        self._curves_path = curves_path
        self._curve_keys: list[str] = []
        self._curve_rows: list[dict] = []
        self._start = None
        self._last_beat = 0.0
        self._envs: list = []

    # --- the budget ------------------------------------------------------------------
    def start_clock(self) -> None:
        """Start the budget clock: the harness (harness.worker) calls it as it calls train(ctx)."""
        self._start = time.monotonic()

    def elapsed(self) -> float:
        """Seconds since train(ctx) was called."""
        return 0.0 if self._start is None else time.monotonic() - self._start

    def time_left(self) -> float:
        """Seconds of training budget left (never negative)."""
        return max(0.0, self.budget_s - self.elapsed())

    def time_up(self) -> bool:
        return self.time_left() <= 0.0

    # --- environments ------------------------------------------------------------------
    def make_env(self, **options):
        """A training environment; options are harness.config.EnvOptions fields, checked against the bounds."""
        opts = config.make_options(**options)
        config.check_device(opts, self.device)
        env_seed = self.seed * 1000 + len(self._envs)  # distinct, harness-owned streams per env
        self._beat(force=True)  # building can be slow (Isaac Lab scenes): beat on both sides of it
        env = backends.make_env(self.backend, opts, seed=env_seed, device=self.device)
        supervised = _SupervisedEnv(env, self)
        self._envs.append(supervised)
        self._beat(force=True)
        return supervised

    def env_steps(self) -> int:
        """Environment steps taken so far, as the harness counts them (steps x num_envs)."""
        return sum(e.harness_steps() for e in self._envs)

    # --- logging -----------------------------------------------------------------------
    def _beat(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_beat >= HEARTBEAT_INTERVAL_S:
            self._last_beat = now
            self._send({"type": "beat", "env_steps": self.env_steps()})

    def log(self, env_steps: int, **scalars: float) -> None:
        """One line per training iteration: heartbeat, progress display and a row of curves.csv.

        Conventional keys: reward, vel_err (running training tracking error), lr, kl, entropy,
        value_loss, and "rew/<term>" for each reward term's weighted contribution.
        """
        values = {}
        for key, v in scalars.items():
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise TypeError(f"ctx.log({key}=...) takes numbers, got {type(v).__name__}") from None
            values[key] = v if math.isfinite(v) else float("nan")
        row = {"elapsed_s": round(self.elapsed(), 3), "env_steps": int(env_steps), **values}
        self._write_curve(row)
        self._beat(force=True)  # the harness's own step count, since a log message's is train.py's word
        self._send({"type": "log", "elapsed": row["elapsed_s"], "env_steps": int(env_steps),
                    "scalars": {k: (None if math.isnan(v) else v) for k, v in values.items()}})

    def _write_curve(self, row: dict) -> None:
        if self._curves_path is None:
            return
        new_keys = [k for k in row if k not in self._curve_keys]
        self._curve_rows.append(row)
        if new_keys:  # a new column: rewrite the (small) file with the wider header
            self._curve_keys += new_keys
            rows, mode = self._curve_rows, "w"
        else:
            rows, mode = [row], "a"
        with open(self._curves_path, mode, newline="") as f:
            w = csv.DictWriter(f, fieldnames=self._curve_keys, restval="")
            if mode == "w":
                w.writeheader()
            w.writerows(rows)


class _SupervisedEnv:
    """The backend environment, with a heartbeat and a step count on every step()."""

    def __init__(self, env, ctx: TrainContext):
        object.__setattr__(self, "_env", env)
        object.__setattr__(self, "_ctx", ctx)
        object.__setattr__(self, "_steps", 0)

    def step(self, actions):
        out = self._env.step(actions)
        object.__setattr__(self, "_steps", self._steps + self._env.num_envs)
        self._ctx._beat()
        return out

    def harness_steps(self) -> int:
        """Environment steps taken through this wrapper (steps x num_envs)."""
        return self._steps

    def __getattr__(self, name):
        return getattr(self._env, name)

    def __setattr__(self, name, value):
        setattr(self._env, name, value)

    def __repr__(self) -> str:
        return f"Supervised({self._env!r})"
