"""`collect/` in layers: each module imports only modules of its own layer or below, with no cycle, and no
module imports another's private (underscore) name. docs/architecture.md's collect row names the same order.

Every import counts, those under `if TYPE_CHECKING:` and inside functions too.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "peftbench"
COLLECT = PACKAGE / "collect"
PREFIX = "peftbench.collect."

# Bottom to top.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("stats", "chance", "collapse", "pareto", "label_placement"),  # numbers of a few values
    ("judged", "merge"),  # results (and judges' scores) -> one frame; each cell's point chosen on validation
    ("table_model",),  # cells, columns, rows, value formats
    (
        "tables",
        "category_table",
        "leaderboard_scores",
        "published",
        "study_cost",
        "protocols",
        "comparison",
        "judge_agreement",
        "search_summary",
    ),
    ("formats", "plots", "halving_plot"),  # tables as md/tex/csv/html; figures
    ("outputs", "leaderboards"),  # the files `collect` writes; leaderboard submissions
    ("report_page", "report"),  # report.html
)


def layer_of(module: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if module in layer)


def imported(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every `from peftbench.… import names` and `import peftbench.…` in `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").startswith("peftbench")
        ):
            found.append((node.module or "", [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.startswith("peftbench")]
    return found


def collect_graph() -> dict[str, set[str]]:
    """collect module -> the collect modules it imports."""
    return {
        path.stem: {m.removeprefix(PREFIX) for m, _names in imported(path) if m.startswith(PREFIX)}
        for path in COLLECT.glob("*.py")
        if path.stem != "__init__"
    }


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
        for module, targets in graph.items()
        for target in targets
        if layer_of(target) > layer_of(module)
    )


def cycles(graph: dict[str, set[str]]) -> list[str]:
    """Each module that reaches itself through its imports."""

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(
            n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph.get(start, ())
        )

    return sorted(m for m in graph if reaches(m, m, {m}))


def test_every_collect_module_has_one_layer():
    named = [m for layer in LAYERS for m in layer]
    assert len(named) == len(set(named)), "a module in two layers"
    assert sorted(named) == sorted(collect_graph())


def test_no_collect_module_imports_one_above_it():
    assert upward_imports(collect_graph()) == []


def test_no_import_cycle_inside_collect():
    assert cycles(collect_graph()) == []


def test_the_layer_checks_catch_an_upward_import_and_a_cycle():
    graph = collect_graph()
    graph["merge"] = graph["merge"] | {"outputs"}
    assert upward_imports(graph) == ["merge (layer 1) imports outputs (layer 5)"]
    assert {"merge", "outputs"} <= set(cycles(graph))


def test_no_private_name_of_collect_is_imported_anywhere():
    """A name another module needs is public; `from peftbench.collect.x import _y` is a defect."""
    files = [*PACKAGE.rglob("*.py"), *PACKAGE.parents[1].joinpath("tests").glob("*.py")]
    private = sorted(
        f"{path.name}: {module}.{name}"
        for path in files
        for module, names in imported(path)
        if module.startswith(PREFIX)
        for name in names
        if name.startswith("_")
    )
    assert private == []


def test_the_architecture_doc_gives_the_layer_order():
    row = next(
        line
        for line in (PACKAGE.parents[1] / "docs" / "architecture.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("| `collect/`")
    )
    positions = [row.index(f"`{module}.py`") for layer in LAYERS for module in layer]
    layers_in_doc = [
        layer_of(m) for _p, m in sorted(zip(positions, [m for la in LAYERS for m in la], strict=True))
    ]
    assert layers_in_doc == sorted(layers_in_doc), (
        "docs/architecture.md names collect's modules out of layer order"
    )
