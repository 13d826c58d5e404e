"""The harness's structure: no import cycle, light modules stay light, no oversized module.

The import graph is read from the source with `ast` (every `import harness...` and
`from harness... import ...`, at module level or inside a function: a lazy import is still an
edge), so a back-edge from a lower layer is caught without importing anything.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
HARNESS = PROJECT / "harness"
MAX_LINES = 460   # "about 450": one job per module

# Modules the orchestrator and the git/report commands load: importing them must not import torch
# (seconds per process that `evaluate.py apply`, the pre-flight and the git checks need not pay).
TORCH_FREE = (
    "harness.backends", "harness.display", "harness.env_api", "harness.experiment", "harness.gitops",
    "harness.integrity", "harness.isaaclab.boot", "harness.plots", "harness.proc", "harness.report",
    "harness.results", "harness.runs", "harness.scoring", "harness.settings", "harness.summary",
    "harness.supervisor", "harness.threads", "harness.verdict", "harness.video",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def harness_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(HARNESS.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The harness modules `name` imports (resolving `from harness import x` to harness.x)."""
    out = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        out |= {t for t in targets if t in known and t != name}
    return out


def import_graph() -> dict[str, set[str]]:
    mods = harness_modules()
    return {name: imports_of(name, path, set(mods)) for name, path in mods.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}   # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (cycle := visit(m)):
                return cycle
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (cycle := visit(n)):
            return cycle
    return None


def test_the_harness_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 20 and "harness.experiment" in graph
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_check_sees_lazy_and_from_imports():
    graph = import_graph()
    assert "harness.report" not in graph["harness.experiment"]    # the experiment draws through plots alone
    assert "harness.scoring" in graph["harness.experiment"]      # module level, `from harness import x`
    assert "harness.mujoco.env" in graph["harness.backends"]     # inside a function
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def _import_alone(name: str) -> tuple[str, int, str]:
    code = f"import sys, {name}; assert 'torch' not in sys.modules, 'imports torch'"
    p = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, timeout=120)
    return name, p.returncode, (p.stderr.strip().splitlines() or [""])[-1]


def test_light_modules_import_alone_in_a_fresh_interpreter_without_torch():
    assert set(TORCH_FREE) <= set(harness_modules())
    with ThreadPoolExecutor(4) as pool:
        failed = [r for r in pool.map(_import_alone, TORCH_FREE) if r[1] != 0]
    assert not failed, failed


def test_every_module_imports():
    """The rest import torch (seconds each), so they share one fresh interpreter."""
    rest = [n for n in harness_modules() if n not in TORCH_FREE]
    code = "import importlib, sys\nfor n in sys.argv[1:]:\n    importlib.import_module(n)\n"
    p = subprocess.run([sys.executable, "-c", code, *rest], cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]



def test_no_module_is_oversized():
    sizes = {name: len(path.read_text().splitlines()) for name, path in harness_modules().items()}
    big = {n: s for n, s in sizes.items() if s > MAX_LINES}
    assert not big, big
