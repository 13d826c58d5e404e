"""The Isaac Lab 3.0 environment's project (harness/isaaclab/pyproject.toml + uv.lock) pins what the
backend targets, kit-less, with the same rsl-rl-lib as the default environment; its lock is current.

Reads the two projects' files (no network), then `uv lock --check` of the Isaac Lab project (the
package index, as in CI; skips with the reason only when it is unreachable).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parent.parent
ISAAC = ROOT / "harness" / "isaaclab"
NETWORK_TROUBLE = re.compile(
    r"(failed to fetch|error sending request|dns error|connection (refused|reset)|timed out|"
    r"network is unreachable|network was disabled|could not connect|offline|tcp connect error)",
    re.IGNORECASE,
)


def _toml(path: Path) -> dict:
    with open(path, "rb") as f:
        return tomllib.load(f)


def _locked(path: Path) -> dict[str, str]:
    return {p["name"]: p["version"] for p in _toml(path)["package"] if "version" in p}


def _pin(deps: list[str], name: str) -> str:
    hits = [d for d in deps if re.match(rf"{re.escape(name)}\s*==", d)]
    assert len(hits) == 1, (name, deps)
    return hits[0].split("==", 1)[1].split(";")[0].strip()


def test_isaaclab_project_pins_isaaclab_3_on_python_312_with_our_rsl_rl():
    main, isaac = _toml(ROOT / "pyproject.toml")["project"], _toml(ISAAC / "pyproject.toml")["project"]
    assert isaac["requires-python"] == "==3.12.*"
    assert _pin(isaac["dependencies"], "isaaclab") == "3.0.0"
    assert _pin(isaac["dependencies"], "rsl-rl-lib") == _pin(main["dependencies"], "rsl-rl-lib") == "5.5.1"
    # what the harness imports at run time is declared (torch, warp, newton come with isaaclab's pins)
    names = {re.split(r"[<>=~\[; ]", d, maxsplit=1)[0] for d in isaac["dependencies"]}
    assert {"numpy", "gymnasium", "matplotlib", "imageio", "imageio-ffmpeg"} <= names


def test_isaaclab_lock_is_kitless_newton_and_matches_the_default_lock():
    isaac, main = _locked(ISAAC / "uv.lock"), _locked(ROOT / "uv.lock")
    expected = {"isaaclab": "3.0.0", "rsl-rl-lib": "5.5.1", "torch": "2.11.0", "warp-lang": "1.17.0",
                "newton": "1.6.1", "mujoco": "3.12.0", "mujoco-warp": "3.12.0"}
    assert {k: isaac.get(k) for k in expected} == expected
    assert not [name for name in isaac if name.startswith("isaacsim")]          # no Isaac Sim: kit-less
    assert main["rsl-rl-lib"] == isaac["rsl-rl-lib"]
    assert int(main["mujoco"].split(".")[0]) >= 4 > int(isaac["mujoco"].split(".")[0])   # why two environments


def _python_312(uv: str) -> str | None:
    """A Python 3.12 interpreter uv can use without downloading one: uv's own search, else pyenv's."""
    found = subprocess.run([uv, "python", "find", "--no-python-downloads", "3.12"], capture_output=True, text=True)
    if found.returncode == 0 and found.stdout.strip():
        return found.stdout.strip()
    pyenv = sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))
    return str(pyenv[-1]) if pyenv else None


def test_isaaclab_lock_is_current():
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH; it is needed for `uv lock --check`")
    python = _python_312(uv)
    if python is None:
        pytest.skip("no Python 3.12 here for uv to lock the Isaac Lab project with (uv would download one)")
    try:
        proc = subprocess.run([uv, "lock", "--check", "--project", str(ISAAC), "--python", python],
                              capture_output=True, text=True, timeout=180, cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.skip("the package index did not answer within 180 s")
    if proc.returncode != 0 and NETWORK_TROUBLE.search(proc.stderr):
        pytest.skip(f"the package index is unreachable: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, f"harness/isaaclab/uv.lock is stale; run `uv lock --project harness/isaaclab`:\n{proc.stderr}"
