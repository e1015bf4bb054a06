"""The notebook API (`peftbench.results`) and docs/results.ipynb, on the synthetic results set."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from peftbench import results
from tests.synthetic_results import write_synthetic_sweep

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "results.ipynb"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("notebook") / "synth"
    write_synthetic_sweep(folder)
    return folder


def test_load_has_the_columns_of_results_parquet_one_row_per_run(sweep: Path, tmp_path: Path):
    from peftbench.collect.outputs import write_collection

    df = results.load(sweep)
    write_collection([sweep], tmp_path)
    parquet = pd.read_parquet(tmp_path / "results.parquet")
    assert list(df.columns) == list(parquet.columns)
    assert len(df) == len(parquet) == df["run_id"].nunique()
    for column in ("gpu_hours", "peak_gpu_bytes", "trainable_params", "provenance", "test_accuracy"):
        assert column in df.columns
    assert set(df["status"]) == {"success", "oom"}
    assert len(df.attrs["unfinished"]) == 1 and df.attrs["unreadable"] == []  # the lost run's folder


def test_load_of_two_sweeps_counts_a_run_once_and_names_a_missing_folder(sweep: Path, tmp_path: Path):
    assert len(results.load(sweep, sweep)) == len(results.load(sweep))
    with pytest.raises(FileNotFoundError, match=r"no such sweep folder: .*nowhere"):
        results.load(sweep, tmp_path / "nowhere")


def test_table_is_collects_table_in_every_format(sweep: Path, tmp_path: Path):
    from peftbench.collect.outputs import write_collection

    df = results.load(sweep)
    summary = results.table(df)
    assert summary in write_collection([sweep], tmp_path).table  # table.md begins with the same table
    assert "\\begin{table}" in results.table(df, "main", format="latex")
    assert results.table(df, "cost", format="csv").count("\n") > 8
    assert "<table" in results.table(df, "scale", format="html")
    one_task = results.table(df[df["task"] == "cola"], "main")
    assert "cola" in one_task and "movie_sentiment" not in one_task


def test_cells_and_bad_arguments(sweep: Path):
    df = results.load(sweep)
    best = results.cells(df)
    assert len(best) == best[["model", "method", "task"]].drop_duplicates().shape[0] == 16
    assert best["best_in_task"].sum() >= 1
    with pytest.raises(ValueError, match="kind 'paper': allowed are summary, main, cost, scale"):
        results.table(df, "paper")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="format 'pdf'"):
        results.table(df, format="pdf")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no successful run"):
        results.table(df[df["status"] == "oom"])


def test_pareto_draws_one_panel_per_task_with_its_front(sweep: Path):
    figure = results.pareto(results.load(sweep), cost="memory")
    panels = [ax for ax in figure.axes if ax.get_xlabel()]
    assert len(panels) == 2 and all("memory" in ax.get_xlabel() for ax in panels)
    assert all(any(line.get_label() == "Pareto front" for line in ax.get_lines()) for ax in panels)


def run_notebook(path: Path) -> tuple[dict[str, object], list[object]]:
    """`path`'s code cells, executed in order in one namespace (as a kernel would, without Jupyter: no
    kernel is installed here), each cell's last expression evaluated: (namespace, those values)."""
    import ast

    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert notebook["nbformat"] == 4
    namespace: dict[str, object] = {"__name__": "__notebook__"}
    shown = []
    for cell in (c for c in notebook["cells"] if c["cell_type"] == "code"):
        assert not cell["outputs"], "the notebook is stored without outputs"
        tree = ast.parse("".join(cell["source"]))
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, path.name, "exec"), namespace)
        if last is not None:
            shown.append(eval(compile(ast.Expression(last.value), path.name, "eval"), namespace))
    return namespace, shown


def test_the_notebook_runs_top_to_bottom(sweep: Path, monkeypatch: pytest.MonkeyPatch):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.setenv("PEFTBENCH_NOTEBOOK_SWEEP", str(sweep))
    namespace, shown = run_notebook(NOTEBOOK)
    assert namespace["SWEEP"] == str(sweep)
    assert isinstance(shown[0], pd.DataFrame) and len(shown[0]) == 5  # df.head()
    assert type(shown[-1]).__name__ == "Figure"  # the Pareto plot
