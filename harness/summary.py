"""The grep-able block that ends a run, a noise-floor run and a re-score: keys in order, and how
each number is written, in one place. `vel_err` always comes first.
"""

from __future__ import annotations

RUN_KEYS = (
    "vel_err", "standing_still", "delta", "held_out", "held_out_gap", "noise_floor", "yaw_err", "survival", "falls",
    "error_split", "torque",
    "foot_slip", "gait", "seeds", "seed_scores", "incumbent", "train_seconds", "startup_seconds", "total_seconds", "env_steps",
    "steps_per_second", "peak_mem_mb", "task", "backend", "device", "budget_s", "slots", "resources", "harness", "sandbox",
    "run_id", "commit", "verdict", "reason", "next",
)
FLOOR_KEYS = (
    "vel_err", "standing_still", "noise_floor", "sigma_used", "seeds", "seed_scores", "ran", "survival", "falls",
    "error_split",
    "train_seconds",
    "total_seconds", "task", "backend", "slots", "resources", "harness", "sandbox", "run_id", "commit", "verdict", "reason",
    "next",
)
SCORE_KEYS = (
    "vel_err", "standing_still", "yaw_err", "survival", "falls", "error_split", "torque", "power", "foot_slip", "gait",
    "policies",
    "seed_scores", "task", "backend",
)
# decimals of each float; any other value is printed as it is
DIGITS = {
    "vel_err": 4, "standing_still": 4, "delta": 4, "held_out": 4, "held_out_gap": 4, "noise_floor": 4, "sigma_used": 4,
    "yaw_err": 4, "foot_slip": 4, "survival": 2, "torque": 2, "power": 1, "train_seconds": 1, "startup_seconds": 1,
    "total_seconds": 1,
}


def block(keys: tuple[str, ...], values: dict) -> list[tuple[str, object]]:
    """(key, value) pairs for harness.display.Display.summary, floats written with DIGITS[key] decimals."""
    return [(key, _text(key, values.get(key))) for key in keys]


def _text(key: str, value):
    if isinstance(value, float) and key in DIGITS:
        return f"{value:.{DIGITS[key]}f}"
    return value
