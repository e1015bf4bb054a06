"""The tree is the architecture: which room may import which, and a core free of heavy imports.

Rooms (docs/architecture.md): `core` is the contract every room shares; `plan` reads sweeps and
sites; `launch` places runs; `run` trains one; `models`, `methods`, `tasks` are what a run is made
of; `collect` turns results into tables; `tools` serve the environment. Every import counts:
absolute and relative ones, those inside functions (the lazy ones are where rooms used to reach
across) and `importlib.import_module` of a literal name. Only imports under `if TYPE_CHECKING:`
are left out: they never run.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "peftbench"
ARCHITECTURE_DOC = PACKAGE.parents[1] / "docs" / "architecture.md"
ROOMS = ("core", "plan", "launch", "run", "models", "methods", "tasks", "collect", "tools")
FRONT_DOOR = {"__init__", "__main__", "cli", "clusters_cli", "options", "views", "plan_views", "results"}
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

TRAINING_STACK = {"torch", "transformers", "peft", "deepspeed", "accelerate", "datasets", "bitsandbytes"}
CONFIG_STACK = {"pydantic", "yaml"}
# room -> the third-party packages it may import at module level (the standard library is open to
# all). The training stack loads only where a run is built; everything else imports it inside the
# function that needs it, so `peftbench status` or `collect` never pays for torch.
MODULE_LEVEL: dict[str, set[str]] = {
    "core": {"pydantic"},
    "plan": CONFIG_STACK,
    "launch": CONFIG_STACK | {"rich"},
    "run": CONFIG_STACK | TRAINING_STACK | {"numpy", "rich"},
    "models": CONFIG_STACK | TRAINING_STACK | {"numpy"},
    "methods": CONFIG_STACK | TRAINING_STACK | {"numpy"},
    "tasks": CONFIG_STACK | TRAINING_STACK | {"numpy"},
    "collect": CONFIG_STACK | {"numpy", "pandas", "matplotlib"},
    "tools": CONFIG_STACK | {"packaging", "rich"},
    None: CONFIG_STACK | {"rich", "typer"},  # the front door
}
# room -> third-party packages it may not import at all, not even inside a function.
NEVER: dict[str, set[str]] = {
    "core": TRAINING_STACK | {"pandas", "submitit"},
    "launch": TRAINING_STACK,  # the launcher knows nothing about training
    "collect": TRAINING_STACK | {"submitit"},
    "run": {"submitit"},  # the run knows nothing about Slurm
    "models": {"submitit"},
    "methods": {"submitit"},
    "tasks": {"submitit"},
}


@dataclass(frozen=True)
class Import:
    """One import statement's target, and whether it runs when the module itself is imported."""

    name: str
    module_level: bool


def module_name(path: Path, package_root: Path = PACKAGE) -> str:
    parts = path.relative_to(package_root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ROOMS else None


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    base = package.split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _names_of(node: ast.AST, package: str) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        module = _absolute(node, package)
        yield module
        yield from (f"{module}.{alias.name}" for alias in node.names)  # `from pkg import module`
    elif (
        isinstance(node, ast.Call)
        and ast.unparse(node.func) in {"importlib.import_module", "import_module"}
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        yield node.args[0].value


def all_imports(path: Path, package_root: Path = PACKAGE) -> list[Import]:
    """Every import of `path` that can run: absolute, relative, lazy and `import_module("...")`."""
    module = module_name(path, package_root)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: list[Import] = []

    def visit(node: ast.AST, module_level: bool) -> None:
        if _is_type_checking(node):
            return
        found.extend(Import(name, module_level) for name in _names_of(node, package))
        inner = module_level and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    for statement in ast.parse(path.read_text(encoding="utf-8")).body:
        visit(statement, True)
    return found


def imports_of(path: Path) -> set[str]:
    """Every peftbench module `path` imports, at the top or inside a function."""
    return {i.name for i in all_imports(path) if i.name.split(".")[0] == "peftbench"}


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {t for t in imports_of(p) if t in known and t != name} for name, p in known.items()}


def forbidden_imports(graph: dict[str, set[str]]) -> list[str]:
    broken = []
    for module, targets in graph.items():
        room = room_of(module)
        if room is None:  # cli.py, views.py, __main__.py: the front door may call any room
            continue
        for target in sorted(targets):
            other = room_of(target)
            if other is None or other == room:
                continue
            allowed_here = ONLY_FROM.get((room, other), {module})
            if other not in ALLOWED[room] or module not in allowed_here:
                broken.append(f"{module} imports {target} ({room} -> {other})")
    return sorted(broken)


def module_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of two or more modules (Tarjan): each is an import cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(cycles)


def third_party_breaches() -> list[str]:
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    broken = []
    for name, path in sorted(modules().items()):
        room = room_of(name)
        for imported in all_imports(path):
            top = imported.name.split(".")[0]
            if top in stdlib or top == "peftbench":
                continue
            if top in NEVER.get(room, set()):
                broken.append(f"{name} imports {top} ({room} never does)")
            elif imported.module_level and top not in MODULE_LEVEL[room]:
                broken.append(f"{name} imports {top} at module level ({room} only inside functions)")
    return sorted(set(broken))


def test_every_module_sits_in_a_room():
    loose = sorted(module_name(p) for p in PACKAGE.glob("*.py") if p.stem not in FRONT_DOOR)
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


def test_relative_lazy_and_import_module_imports_are_all_seen(tmp_path: Path):
    """A reach across hidden in a relative import, a function body or import_module still counts."""
    room = tmp_path / "peftbench" / "collect"
    room.mkdir(parents=True)
    source = room / "sneaky.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from ..run import one\n"
        "from . import merge\n"
        "if TYPE_CHECKING:\n    import torch\n"
        "def later():\n"
        "    import importlib\n"
        "    import pandas\n"
        "    importlib.import_module('peftbench.launch.slurm')\n",
        encoding="utf-8",
    )
    found = {(i.name, i.module_level) for i in all_imports(source, tmp_path / "peftbench")}
    assert ("peftbench.run.one", True) in found
    assert ("peftbench.collect.merge", True) in found
    assert ("pandas", False) in found
    assert ("peftbench.launch.slurm", False) in found
    assert not any(name == "torch" for name, _ in found)


def test_no_import_cycle_between_rooms():
    edges: dict[str, set[str]] = defaultdict(set)
    for module, targets in import_graph().items():
        for target in targets:
            a, b = room_of(module), room_of(target)
            if a and b and a != b:
                edges[a].add(b)
    assert module_cycles({room: set(edges[room]) for room in ROOMS}) == []


def test_no_import_cycle_between_modules():
    """Not even inside a room, lazy imports included: a cycle means two modules hold one decision."""
    assert module_cycles(import_graph()) == []


def test_the_cycle_check_finds_a_cycle():
    graph = import_graph()
    graph["peftbench.core.files"] = graph["peftbench.core.files"] | {"peftbench.core.paths"}
    graph["peftbench.core.paths"] = graph["peftbench.core.paths"] | {"peftbench.core.files"}
    assert ["peftbench.core.files", "peftbench.core.paths"] in module_cycles(graph)


def test_each_room_imports_only_its_third_party_stacks():
    """torch, transformers and peft load at module level only in run, models, methods and tasks;
    launch and collect never import them; the run never imports submitit."""
    assert third_party_breaches() == []


@pytest.mark.parametrize("room", ["core", "collect", "launch", "plan"])
def test_a_room_loads_without_the_training_stack(room: str):
    """core (and so every room's contract) imports no torch, transformers or peft; core no pandas."""
    names = sorted(module_name(p) for p in (PACKAGE / room).rglob("*.py"))
    heavy = ["torch", "transformers", "peft", "deepspeed"] + (["pandas"] if room == "core" else [])
    code = (
        "import importlib, sys\n"
        f"for m in {names!r}: importlib.import_module(m)\n"
        f"print(' '.join(h for h in {heavy!r} if h in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == []


def documented_modules() -> set[str]:
    """Every module the rooms table of docs/architecture.md names, as `room/name.py`: a row names its
    room's modules by their path inside the room (`heads/inputs.py`), another room's by the whole."""
    named = set()
    for line in ARCHITECTURE_DOC.read_text(encoding="utf-8").splitlines():
        row = re.match(r"\| `([a-z_]+)(/|\.py)`", line)
        if not row:
            continue
        prefix = f"{row.group(1)}/" if row.group(2) == "/" else ""
        for name in re.findall(r"`([a-z0-9_/]+\.py)`", line.split("|")[2]):
            if name.split("/")[0] in ROOMS:  # another room's module, named by its whole path
                named.add(name)
            elif not name.startswith("tests/"):
                named.add(prefix + name)
        if not prefix:
            named.add(f"{row.group(1)}.py")
    return named


def test_docs_architecture_names_every_module():
    """The rooms table names each module in its room's row, and no module that is gone."""
    tree = {
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if p.name != "__init__.py" and p.parent != PACKAGE
    } | {p.name for p in PACKAGE.glob("*.py") if p.stem in FRONT_DOOR - {"__init__", "__main__"}}
    documented = documented_modules()
    assert sorted(tree - documented) == [], "modules the rooms table leaves out"
    assert sorted(documented - tree) == [], "modules the rooms table names that do not exist"
