"""What a run prints: a progress bar on a terminal, plain periodic lines in a log, the summary block."""

from __future__ import annotations

import sys
import threading
import time

PLAIN_INTERVAL_S = 15.0   # a redirected run.log gets one progress line this often
BAR_WIDTH = 24
PREFIX = "  | "           # training-process output is echoed with this, so only the harness starts lines with keys


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


class Display:
    def __init__(self, stream=None, tty: bool | None = None):
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self._bar_shown = False
        self._last_plain: dict[str, float] = {}
        self._lock = threading.RLock()   # slots print from several threads
        self.parallel = False            # several runs at once: plain progress lines, one per run

    def _write(self, text: str) -> None:
        with self._lock:
            self.stream.write(text)
            self.stream.flush()

    def line(self, text: str) -> None:
        """A whole line, above the progress bar if one is showing."""
        with self._lock:
            if self._bar_shown:
                self._write("\r\033[K")
            self._write(text.rstrip("\n") + "\n")
            self._bar_shown = False

    def echo(self, text: str) -> None:
        self.line(PREFIX + text.rstrip("\n"))

    def progress(self, label: str, elapsed: float, budget: float, env_steps: int, scalars: dict) -> None:
        reward = scalars.get("reward")
        err = scalars.get("vel_err")
        tail = f"steps {env_steps:,}"
        if reward is not None:
            tail += f"  reward {_fmt(reward)}"
        if err is not None:
            tail += f"  vel_err {_fmt(err)}"
        if self.tty and not self.parallel:
            frac = min(1.0, elapsed / budget) if budget > 0 else 1.0
            fill = int(round(frac * BAR_WIDTH))
            bar = "#" * fill + "." * (BAR_WIDTH - fill)
            self._write(f"\r\033[K{label} [{bar}] {elapsed:5.0f}/{budget:.0f} s  {tail}")
            self._bar_shown = True
            return
        now = time.monotonic()
        if now - self._last_plain.get(label, -1e9) >= PLAIN_INTERVAL_S:
            self._last_plain[label] = now
            self.line(f"{label} {elapsed:.0f}/{budget:.0f} s  {tail}")

    def end_progress(self, label: str | None = None) -> None:
        with self._lock:
            if self._bar_shown:
                self._write("\n")
                self._bar_shown = False
        self._last_plain.pop(label, None)

    def summary(self, pairs: list[tuple[str, object]]) -> None:
        """The grep-able block: '---' then 'key: value', one per line."""
        self.end_progress()
        self._write("---\n")
        for key, value in pairs:
            self._write(f"{key + ':':<18}{'' if value is None else _fmt(value)}\n")
