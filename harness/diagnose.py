"""Where a policy's vel_err comes from: falls, command switches, steady walking, command types.

harness.scoring fills a Breakdown from the panel walk it scores (never from anything train.py
says), and metrics.json carries the result as "breakdown":
  share / mean   each phase's share of the summed error, and its mean error per episode step:
                 after_fall (the rest of an episode after its fall, charged as standing still),
                 switch_0_0.5s and switch_0.5_2s (alive, that long after a command switch; an
                 episode's start counts as one), steady (alive, 2 s or more after a switch)
  falls          episodes that fell; falls_since_switch: how many fell 0-0.5 s, 0.5-2 s, 2 s+ after a switch
  survived_vel_err   vel_err of the episodes that never fell (None if all fell)
  by_command     mean error per step under each command type: forward (|v_x| the largest of
                 |v_x|, |v_y|, |yaw rate|; forward or backward), lateral (|v_y|), yaw, zero (standing)
`uv run evaluate.py diagnose runs/<run_id>` re-scores saved policies and prints it all.
Torch-free at import (tensor methods only): the orchestrator and the report read summaries from it.
"""

from __future__ import annotations

from harness import config

PHASES = ("after_fall", "switch_0_0.5s", "switch_0.5_2s", "steady")
FALL_BINS = ("0-0.5s", "0.5-2s", "2s+")
COMMAND_TYPES = ("forward", "lateral", "yaw", "zero")
SWITCH_WINDOWS_S = (0.5, 2.0)


def command_types(commands):
    """(..., 3) commands tensor -> (...) index into COMMAND_TYPES."""
    return commands.abs().argmax(dim=-1).masked_fill((commands == 0).all(dim=-1), len(COMMAND_TYPES) - 1)


class Breakdown:
    """Accumulates one panel walk, step by step, alongside harness.rollout.Tracking."""

    def __init__(self, panel):
        self.segment_steps = panel.segment_steps
        self.types = command_types(panel.commands)                      # (E, segments)
        zeros = panel.start_yaw.new_zeros                               # float64 CPU sums
        self.err, self.steps = zeros(len(PHASES)).double(), zeros(len(PHASES)).double()
        self.type_err, self.type_steps = zeros(len(COMMAND_TYPES)).double(), zeros(len(COMMAND_TYPES)).double()
        self.falls = zeros(len(FALL_BINS)).long()

    def _window(self, step: int) -> int:
        """The phase index of an alive step: seconds since the last switch against SWITCH_WINDOWS_S."""
        since = (step % self.segment_steps) * config.CONTROL_DT
        return 1 + sum(since >= w for w in SWITCH_WINDOWS_S)

    def add(self, step: int, err, alive, terminated) -> None:
        """err: (E,) this step's charged error; alive: (E,) alive during it; terminated: (E,) fell in it."""
        err, alive, fell = err.double().cpu(), alive.cpu(), (alive & terminated.bool()).cpu()
        window = self._window(step)
        for phase, mask in ((0, ~alive), (window, alive)):
            self.err[phase] += err[mask].sum()
            self.steps[phase] += mask.sum()
        kinds = self.types[:, min(step // self.segment_steps, self.types.shape[1] - 1)]
        self.type_err.index_add_(0, kinds, err)
        self.type_steps.index_add_(0, kinds, err.new_ones(err.shape))
        self.falls[window - 1] += int(fell.sum())

    def result(self, episode_err, survived) -> dict:
        """The breakdown (module doc); episode_err: (E,) vel_err per episode, survived: (E,) bool."""
        total = float(self.err.sum()) or 1.0
        episode_err, survived = episode_err.cpu(), survived.cpu()
        ratio = lambda a, b: [round(float(x) / float(n), 4) if n else None for x, n in zip(a, b)]  # noqa: E731
        return {
            "share": dict(zip(PHASES, (round(float(x) / total, 4) for x in self.err))),
            "mean": dict(zip(PHASES, ratio(self.err, self.steps))),
            "falls": int(self.falls.sum()),
            "falls_since_switch": dict(zip(FALL_BINS, self.falls.tolist())),
            "survived_vel_err": round(float(episode_err[survived].mean()), 4) if survived.any() else None,
            "by_command": dict(zip(COMMAND_TYPES, ratio(self.type_err, self.type_steps))),
        }


def summary_values(breakdowns: list[dict]) -> dict[str, str]:
    """The summary block's two lines over seeds: falls (summed) and the error split (mean shares)."""
    if not breakdowns:
        return {"falls": "", "error_split": ""}
    falls = sum(b["falls"] for b in breakdowns)
    early = sum(b["falls_since_switch"]["0-0.5s"] + b["falls_since_switch"]["0.5-2s"] for b in breakdowns)
    share = {p: sum(b["share"][p] for b in breakdowns) / len(breakdowns) for p in PHASES}
    return {
        "falls": f"{falls} over {len(breakdowns)} seed(s), {early} of them within 2 s of a command switch",
        "error_split": "  ".join(f"{p} {share[p]:.0%}" for p in PHASES),
    }


def report_lines(metrics: dict) -> list[str]:
    """One policy's breakdown as the lines `evaluate.py diagnose` prints."""
    b = metrics["breakdown"]
    fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
    lines = [f"vel_err {metrics['vel_err']:.4f}  survival {metrics['survival']:.2f}  "
             f"survived episodes {fmt(b['survived_vel_err'])}  standing still {metrics['standing_still']:.4f}"]
    lines += [f"  {p:<15} share {b['share'][p]:>4.0%}  mean error {fmt(b['mean'][p])}" for p in PHASES]
    lines.append(f"  falls {b['falls']}: " + ", ".join(f"{n} at {k} after a switch"
                                                      for k, n in b["falls_since_switch"].items()))
    lines.append("  by command: " + "  ".join(f"{k} {fmt(v)}" for k, v in b["by_command"].items()))
    return lines
