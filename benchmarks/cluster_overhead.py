"""What `--cluster` costs per seed: the same smoke run here and as a task on a local Ray cluster.

    uv run python benchmarks/cluster_overhead.py [--runs 3] [--budget 10]

In a throwaway clone of this repository, `python train.py --smoke --budget B` runs one seed
(train.py as it is: the real PPO, the full panel), alternately on this machine and with
`--cluster` on a Ray cluster this script starts on 127.0.0.1 with this machine's CPUs. Both
print total_seconds; the difference of the medians is the cluster's overhead per seed (the
snapshot, the task, a fresh folder on the node, the tarball back). Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.cluster import local_cluster  # noqa: E402


def total_seconds(repo: Path, env: dict, *args: str) -> float:
    p = subprocess.run([sys.executable, "train.py", *args], cwd=repo, env=env, capture_output=True, text=True)
    block = p.stdout.rsplit("\n---\n", 1)[-1]
    values = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in block.splitlines())}
    if p.returncode != 0 or "total_seconds" not in values:
        raise SystemExit(f"train.py {' '.join(args)} failed:\n{p.stdout[-3000:]}{p.stderr[-2000:]}")
    return float(values["total_seconds"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--budget", type=float, default=10.0)
    a = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "RAY_"))}
    env.update(RAY_AUTH_MODE="disabled")   # as local_cluster starts it
    with local_cluster(len(os.sched_getaffinity(0))) as address, tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
        subprocess.run(["git", "checkout", "-qb", "autoresearch/overhead"], cwd=repo, check=True)
        common = ("--smoke", "--budget", f"{a.budget:g}")
        here, there = [], []
        for i in range(a.runs):
            t0 = time.monotonic()
            here.append(total_seconds(repo, env, *common))
            there.append(total_seconds(repo, env, *common, "--cluster", address))
            print(f"run {i + 1}: here {here[-1]:.1f} s, on the cluster {there[-1]:.1f} s "
                  f"({time.monotonic() - t0:.0f} s)", flush=True)
    h, t = statistics.median(here), statistics.median(there)
    print(f"\none seed, {a.budget:g} s budget, median of {a.runs}: here {h:.1f} s, on a local Ray cluster {t:.1f} s")
    print(f"overhead of --cluster: {t - h:+.1f} s per seed ({t / h:.2f}x of a smoke seed; "
          f"{(t - h) / 330:+.1%} of a 300 s seed's 330 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
