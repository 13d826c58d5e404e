"""How big the evaluation panel must be: the sampling error it adds to vel_err, and what each size costs.

    uv run python benchmarks/panel_size.py                     # runs/noise-*/seed<k>-r*/policy.pt2, 4 seeds
    uv run python benchmarks/panel_size.py --policies a.pt2 b.pt2 --big 512 --sizes 64 128 256 512
    uv run python benchmarks/panel_size.py --task rough --policies runs/<id>/seed*/policy.pt2 ...

Each policy is scored once on a big panel (harness.scoring.evaluate_policy, keeping each episode's
vel_err). Resampling those episodes gives the standard error of a panel of each size: "SE" for one
policy's vel_err, "SE diff" for the difference of two policies on the same episodes (what a
comparison on one shared panel carries). Each size is then timed as a real evaluation (a fresh
scoring process, run_evaluation, on the first policy), and the held-out check (run_held_out) for 2
and 6 policies. Take it on a quiet machine: the timings are wall-clock.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import config, scoring, threads  # noqa: E402

RESAMPLES = 4000


def boot_se(x: np.ndarray, n: int, rng) -> float:
    """SE of the mean of n episodes drawn (with replacement) from x."""
    return float(x[rng.integers(0, len(x), (RESAMPLES, n))].mean(axis=1).std())


def timed(fn, *args, **kw) -> float:
    t0 = time.monotonic()
    fn(*args, **kw)
    return time.monotonic() - t0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--policies", type=Path, nargs="*")
    p.add_argument("--max-policies", type=int, default=4)
    p.add_argument("--big", type=int, default=512)
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512])
    p.add_argument("--held-out", type=int, nargs="*", default=[2, 6], help="policy counts to time the held-out check for")
    p.add_argument("--task", choices=config.TASKS, default=config.DEFAULT_TASK)
    a = p.parse_args()
    if not a.policies:   # one run per training seed: distinct seeds are what the seed sd is about
        by_seed = {}
        for path in sorted(ROOT.glob("runs/noise-*/seed*-r*/policy.pt2")):
            by_seed.setdefault(path.parent.name.split("-")[0], path)
        a.policies = list(by_seed.values())[:a.max_policies]
    policies = a.policies
    if not policies:
        raise SystemExit("no policies: pass --policies or run benchmarks/noise.py first")
    threads.configure("cpu")
    rng = np.random.default_rng(0)

    per_ep = []
    for path in policies:
        m = scoring.evaluate_policy(path, episodes=a.big, per_episode=True, task=a.task)
        x = np.asarray(m["vel_err_episodes"])
        per_ep.append(x)
        print(f"{path}: vel_err {x.mean():.4f} on {a.big} episodes (episode sd {x.std(ddof=1):.4f}), "
              f"survival {m['survival']:.3f}, standing still {m['standing_still']:.4f}, {m['eval_seconds']:.1f} s",
              flush=True)

    env = {**os.environ}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in a.sizes:
            se = np.mean([boot_se(x, n, rng) for x in per_ep])
            diffs = [boot_se(x - y, n, rng) for x, y in itertools.combinations(per_ep, 2)]
            env["HARNESS_PANEL_EPISODES"] = str(n)   # a real evaluation of this size
            wall = timed(scoring.run_evaluation, policies[0], Path(tmp) / "metrics.json", env=env, task=a.task)
            rows.append((n, se, np.mean(diffs) if diffs else float("nan"), wall))
            print(f"  timed {n} episodes: {wall:.1f} s", flush=True)

        held = []
        env.pop("HARNESS_PANEL_EPISODES")
        for k in a.held_out:   # k distinct files, cycling through the policies
            paths = [Path(tmp) / f"p{i}.pt2" for i in range(k)]
            for dst, src in zip(paths, itertools.cycle(policies)):
                shutil.copy(src, dst)
            held.append((k, timed(scoring.run_held_out, paths, Path(tmp) / "held_out.json", env=env, task=a.task)))

    print(f"\n{a.task}: {len(policies)} policies, {a.big}-episode panels, {RESAMPLES} resamples; "
          f"{len(os.sched_getaffinity(0))} CPUs; load {os.getloadavg()[0]:.2f}")
    print(f"{'episodes':>8}  {'SE vel_err':>10}  {'SE diff':>8}  {'eval s':>6}")
    for n, se, d, wall in rows:
        print(f"{n:>8}  {se:>10.4f}  {d:>8.4f}  {wall:>6.1f}")
    per = config.HELD_OUT_EPISODES
    for k, wall in held:
        print(f"held-out check, {k} policies x {len(config.HELD_OUT_CONDITIONS)} conditions x {per} episodes: {wall:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
