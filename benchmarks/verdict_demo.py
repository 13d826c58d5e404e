"""The verdict on real runs: keep, discard, discard, in a throwaway clone of this repository.

    uv run python benchmarks/verdict_demo.py [--dir /tmp/verdict-demo]

Every step is what an agent does (`python train.py`, `evaluate.py floor`, `evaluate.py apply`) at
the full budget, with real git in the clone, on a quiet machine (a run that is not quiet is set
aside and run again by the harness itself):
  1. the old baseline: today's train.py with DESIRED_KL = 0.01, then its floor on seeds 2-3;
  2. today's train.py (DESIRED_KL = 0.02) as the candidate: must be kept; then its floor on 2 more seeds;
  3. a comment-only change: must be discarded;
  4. a broken change (the tracking reward's sign flipped): must be discarded after one seed.
The floors take the 3 seeds a keep needs rather than all 8 (`floor --seeds 2`), to fit in under two hours:
a verdict that wants more seeds runs the incumbent on them itself, as it does for any agent.
The harness's output of every step is appended to benchmarks/verdict_demo.log; the table at the
end gives each step's verdict, seeds and wall time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOG = ROOT / "benchmarks" / "verdict_demo.log"
KL = "DESIRED_KL = 0.02 "
TRACKING = "    track_lin_vel_xy_exp: 1.5,"


def sh(repo: Path, *args: str) -> str:
    return subprocess.run(args, cwd=repo, check=True, capture_output=True, text=True).stdout


def summary(text: str) -> dict[str, str]:
    block = text.rsplit("\n---\n", 1)[-1]
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in block.splitlines()) if v}


def step(repo: Path, name: str, expected: str | None, *args: str) -> dict:
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, *args], cwd=repo, capture_output=True, text=True)
    wall = time.monotonic() - t0
    with LOG.open("a") as log:
        log.write(f"\n=== {name}: python {' '.join(args)} ({wall / 60:.1f} min, exit {p.returncode})\n{p.stdout}{p.stderr}")
    s = summary(p.stdout)
    got = s.get("verdict", f"exit {p.returncode}")
    print(f"{name:<34} {got:<9} {s.get('seeds', '-'):>5} {wall / 60:>7.1f} min  {s.get('reason', '')[:90]}", flush=True)
    if expected and got != expected:
        raise SystemExit(f"{name}: expected {expected}, got {got} (see {LOG})")
    return s


def commit(repo: Path, source: str, message: str) -> None:
    (repo / "train.py").write_text(source)
    sh(repo, "git", "commit", "-qam", message)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dir", type=Path, default=Path("/tmp/verdict-demo"))
    a = p.parse_args()
    if a.dir.exists():
        raise SystemExit(f"{a.dir} exists; pass another --dir or remove it")
    today = (ROOT / "train.py").read_text()
    assert KL in today and TRACKING in today, "train.py changed: update the demo's edits"
    sh(ROOT, "git", "clone", "-q", str(ROOT), str(a.dir))
    repo = a.dir
    sh(repo, "git", "checkout", "-qb", "autoresearch/demo")
    for key, value in (("user.email", "demo@example.com"), ("user.name", "verdict demo")):
        sh(repo, "git", "config", key, value)
    LOG.write_text(f"# benchmarks/verdict_demo.py on {sh(ROOT, 'git', 'rev-parse', '--short', 'HEAD').strip()}, "
                   f"{time.strftime('%Y-%m-%d %H:%M')}\n")
    print(f"{'step':<34} {'verdict':<9} {'seeds':>5} {'wall':>11}  reason")
    commit(repo, today.replace(KL, "DESIRED_KL = 0.01 "), "old baseline: DESIRED_KL 0.01")
    step(repo, "old baseline (KL 0.01)", "baseline", "train.py")
    step(repo, "  its floor", "floor", "evaluate.py", "floor", "--seeds", "2")
    commit(repo, today, "DESIRED_KL 0.02: the lr is no longer pinned low")
    step(repo, "today's train.py (KL 0.02)", "keep", "train.py")
    step(repo, "  apply", None, "evaluate.py", "apply")
    step(repo, "  its floor", "floor", "evaluate.py", "floor", "--seeds", "2")
    commit(repo, today + "\n# a comment: the code is unchanged\n", "comment only")
    step(repo, "comment-only change", "discard", "train.py")
    step(repo, "  apply", None, "evaluate.py", "apply")
    commit(repo, today.replace(TRACKING, TRACKING.replace("1.5", "-1.5")), "tracking reward with the wrong sign")
    s = step(repo, "broken change (reward sign)", "discard", "train.py")
    if s.get("seeds") != "1":
        raise SystemExit(f"the broken change took {s.get('seeds')} seeds, expected 1")
    step(repo, "  apply", None, "evaluate.py", "apply")
    print(f"\nresults.tsv of the demo: {repo / 'results.tsv'}; harness output: {LOG}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
