"""The tree is the architecture: which room may import which, and a core free of heavy imports.

Rooms (docs/architecture.md): `core` is the contract every room shares; `plan` reads sweeps and
sites; `launch` places runs; `run` trains one; `models`, `methods`, `tasks` are what a run is made
of; `collect` turns results into tables; `tools` serve the environment. Every import counts,
including those inside functions (the lazy ones are where rooms used to reach across).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "peftbench"
ROOMS = ("core", "plan", "launch", "run", "models", "methods", "tasks", "collect", "tools")
BUILDING_BLOCKS = {"core", "models", "methods", "tasks"}
# room -> the other rooms it may import; the package root (`peftbench.__version__`) is open to all.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "models": {"core"},
    "methods": {"core", "models"},
    "tasks": {"core", "models"},
    "plan": BUILDING_BLOCKS - {"plan"},
    "run": BUILDING_BLOCKS,
    "launch": {"core", "plan", "run"},  # run: only launch/array_task.py (below)
    "collect": {"core"},
    "tools": {"core", "plan", "launch"},
}
ONLY_FROM = {("launch", "run"): {"peftbench.launch.array_task"}}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ROOMS else None


def imports_of(path: Path) -> set[str]:
    """Every peftbench module `path` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            root = node.module == "peftbench"  # `from peftbench import fetch` names a module
            found |= {f"{node.module}.{a.name}" for a in node.names} if root else {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {name for name in found if name.split(".")[0] == "peftbench"}


def import_graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def forbidden_imports(graph: dict[str, set[str]]) -> list[str]:
    broken = []
    for module, targets in graph.items():
        room = room_of(module)
        if room is None:  # cli.py, __main__.py: the front door may call any room
            continue
        for target in sorted(targets):
            other = room_of(target)
            if other is None or other == room:
                continue
            allowed_here = ONLY_FROM.get((room, other), {module})
            if other not in ALLOWED[room] or module not in allowed_here:
                broken.append(f"{module} imports {target} ({room} -> {other})")
    return sorted(broken)


def test_every_module_sits_in_a_room():
    loose = sorted(
        module_name(p) for p in PACKAGE.glob("*.py") if p.stem not in {"__init__", "__main__", "cli", "views"}
    )
    assert loose == [], "modules outside any room"


def test_rooms_import_only_what_the_architecture_allows():
    assert forbidden_imports(import_graph()) == []


def test_the_rule_check_catches_a_room_reaching_across():
    """The check itself can fail: a collector importing the run, a planner importing the launcher."""
    graph = import_graph()
    graph["peftbench.collect.merge"] = graph["peftbench.collect.merge"] | {"peftbench.run.one"}
    graph["peftbench.plan.expand"] = graph["peftbench.plan.expand"] | {"peftbench.launch.slurm"}
    graph["peftbench.launch.local"] = graph["peftbench.launch.local"] | {"peftbench.run.one"}
    assert forbidden_imports(graph) == [
        "peftbench.collect.merge imports peftbench.run.one (collect -> run)",
        "peftbench.launch.local imports peftbench.run.one (launch -> run)",
        "peftbench.plan.expand imports peftbench.launch.slurm (plan -> launch)",
    ]


def test_no_import_cycle_between_rooms():
    edges: dict[str, set[str]] = defaultdict(set)
    for module, targets in import_graph().items():
        for target in targets:
            a, b = room_of(module), room_of(target)
            if a and b and a != b:
                edges[a].add(b)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in edges[start])

    assert [room for room in ROOMS if reaches(room, room, {room})] == []


@pytest.mark.parametrize("room", ["core", "collect"])
def test_a_room_loads_without_the_training_stack(room: str):
    """core (and so every room's contract) imports no torch, transformers or peft; core no pandas."""
    modules = sorted(module_name(p) for p in (PACKAGE / room).rglob("*.py"))
    heavy = ["torch", "transformers", "peft", "deepspeed"] + (["pandas"] if room == "core" else [])
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(' '.join(h for h in {heavy!r} if h in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == []
