"""One seed, trained in the supervised worker and scored in the separate evaluation process.

The orchestrator calls train_and_score() for a seed on this machine; on a Ray cluster
(harness.cluster) a node runs the same thing from a snapshot of the commit's files:

    python -m harness.seedrun JOB_JSON        (in the snapshot's folder; writes <out>/seedrun.json)

The integrity checks around a seed (harness.integrity.Guard) stay with the orchestrator, which
alone owns results.tsv and the git steps.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

from harness import load, sandbox, scoring, supervisor
from harness.results import SeedResult
from harness.runs import ARTIFACT_NAME

LOADED = "loaded"            # a crash reason's first word that is no verdict on train.py (see not_a_verdict)
LOST = "lost node"           # the same, for a cluster task whose node or worker died twice
RESULT_FILE = "seedrun.json"


def not_a_verdict(reason: str | None) -> bool:
    """A failure of the machine (load, a lost node), not of train.py: run it again, never reset for it."""
    return bool(reason) and reason.startswith((LOADED, LOST))


def train_and_score(root: Path, train_file: Path, seed: int, out: Path, settings, box: sandbox.Sandbox,
                    check_load: bool, say=print, on_progress=None, echo=None, env: dict | None = None) -> SeedResult:
    """Train train_file on seed into out (the worker may write only there), then score its policy."""
    s = settings
    say(f"training {train_file.relative_to(root)} for {s.budget_s:g} s on {s.backend}/{s.device} "
        f"(sandbox: {box.label})")
    cmd = [sys.executable, "-m", "harness.worker", "--train", str(train_file), "--seed", str(seed),
           "--out", str(out), "--task", s.task, "--backend", s.backend, "--device", s.device, "--budget", str(s.budget_s)]
    if s.smoke:
        cmd.append("--smoke")
    cmd = sandbox.wrap(cmd, box, root, writable=out, readable=[train_file], network=s.backend != "mujoco")
    w = supervisor.run_supervised(cmd, out / "train.log", s.budget_s, echo=echo, cwd=root, env=env,
                                  on_progress=on_progress)
    r = SeedResult(seed, w.ok, w.reason, str(out.relative_to(root)), startup_s=w.startup_s, train_s=w.train_s,
                   env_steps=w.env_steps, foreign_share=w.foreign_share)
    if w.ok and check_load and load.is_loaded(w.foreign_share):
        r.ok, r.reason = False, (f"{LOADED}: other processes used {w.foreign_share:.0%} of the CPUs while it trained "
                                 f"({w.env_steps:,} env steps); not compared")
    if r.ok:
        say(f"trained {w.train_s:.1f} s ({w.env_steps:,} env steps, start-up {w.startup_s:.1f} s); scoring")
        try:
            r.metrics = scoring.run_evaluation(out / ARTIFACT_NAME, out / "metrics.json", s.backend, s.device,
                                               log_path=out / "eval.log", env=env, task=s.task)
        except scoring.EvalError as e:
            r.ok, r.reason = False, str(e)
    return r


def main(argv=None) -> int:
    """A cluster node's side: the job (harness.cluster) as JSON; the SeedResult goes to <out>/seedrun.json.
    harness.cluster starts it bound to its Ray worker (PR_SET_PDEATHSIG), so a cancel takes it down."""
    from types import SimpleNamespace

    job = json.loads((argv or sys.argv[1:])[0])
    root = Path.cwd().resolve()
    out = root / job["out"]
    out.mkdir(parents=True, exist_ok=True)
    settings = SimpleNamespace(task=job["task"], backend=job["backend"], device=job["device"],
                               budget_s=job["budget_s"], smoke=bool(job["smoke_why"]))   # what train_and_score reads
    r = train_and_score(root, root / job["train"], job["seed"], out, settings, sandbox.choose(job["backend"]),
                        check_load=False, say=lambda text: print(text, flush=True), echo=None)
    (out / RESULT_FILE).write_text(json.dumps(asdict(r)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
