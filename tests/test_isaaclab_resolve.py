"""The project's dependencies (rsl-rl-lib 5.5.1 included) resolve together with Isaac Lab 2.3.2 on
Python 3.11 (resolve only: `uv pip compile`, no Isaac Sim, nothing installed).

Needs the package index (PyPI, as in CI); skips with the reason only when it is unreachable.
A genuine conflict fails with uv's explanation of which requirements clash.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parent.parent
ISAAC_PINS = ("isaaclab==2.3.2.post1",)
# Isaac Lab's wheel is cp311, manylinux_2_35 x86_64 only.
PLATFORM = ("--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_35")
NETWORK_TROUBLE = re.compile(
    r"(failed to fetch|error sending request|dns error|connection (refused|reset)|timed out|"
    r"network is unreachable|network was disabled|could not connect|offline|tcp connect error)",
    re.IGNORECASE,
)


def project_dependencies() -> list[str]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return list(tomllib.load(f)["project"]["dependencies"])


# Isaac Lab 2.3's pip guide installs torch 2.7.0 (cu128) for Isaac Sim 5.1 before isaaclab: resolve with it too.
@pytest.mark.parametrize("extra", [(), ("torch==2.7.0",)], ids=["latest", "isaacsim-torch"])
def test_project_dependencies_resolve_with_isaaclab_on_python_311(tmp_path, extra):
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH; it is needed for `uv pip compile`")
    requirements = tmp_path / "requirements.in"
    requirements.write_text("\n".join([*project_dependencies(), *ISAAC_PINS, *extra]) + "\n")
    try:
        proc = subprocess.run(
            [uv, "pip", "compile", str(requirements), *PLATFORM, "--no-header", "--no-annotate", "--quiet"],
            capture_output=True, text=True, timeout=180, cwd=tmp_path,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("the package index did not answer within 180 s")
    if proc.returncode != 0:
        if NETWORK_TROUBLE.search(proc.stderr):
            pytest.skip(f"the package index is unreachable: {proc.stderr.strip().splitlines()[-1]}")
        pytest.fail(
            "the project's dependencies do not resolve together with "
            f"{', '.join((*ISAAC_PINS, *extra))} for Python 3.11:\n{proc.stderr}"
        )
    pinned = dict(
        line.split("==", 1) for line in proc.stdout.splitlines() if "==" in line and not line.startswith("#")
    )
    assert pinned.get("isaaclab") == "2.3.2.post1", proc.stdout
    assert pinned.get("rsl-rl-lib") == "5.5.1", proc.stdout   # the project's own pin
    for name in ("mujoco", "torch", "numpy", "gymnasium", "matplotlib", "imageio", "imageio-ffmpeg"):
        assert name in pinned, f"{name} missing from the resolution:\n{proc.stdout}"
    # Isaac Lab pins numpy<2 and gymnasium==1.2.0: our lower bounds must admit them
    assert int(pinned["numpy"].split(".")[0]) < 2
    assert pinned["gymnasium"] == "1.2.0"
    for pin in extra:
        name, version = pin.split("==")
        assert pinned[name] == version
