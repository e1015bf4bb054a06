"""What the CLI shows: tables from column data, one colour per run state, the plan and status tables."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console, RenderableType
from rich.style import Style

from peftbench import views
from peftbench.launch.slurm_queries import QueryFailure
from peftbench.launch.slurm_state import STATES, RunState, SweepReport
from peftbench.plan.memory import GB, Fit, MemoryEstimate
from peftbench.plan.sweep_plan import MemoryRow
from peftbench.views import MEMORY_COLUMNS, STATE_STYLES, Column, PlanRow, styled, table
from tests.conftest import demo_run


def recording_console(terminal: bool = False) -> Console:
    colours = "standard" if terminal else None
    return Console(file=io.StringIO(), width=200, force_terminal=terminal, color_system=colours)


def rendered(renderable: RenderableType) -> str:
    console = recording_console()
    console.print(renderable)
    return console.file.getvalue()


def rows_of(text: str) -> list[list[str]]:
    """The body rows of a rendered table, each a list of its stripped cells."""
    return [[c.strip() for c in line.split("│")[1:-1]] for line in text.splitlines() if line.startswith("│")]


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """views' consoles replaced by recording ones: `.out()` and `.err()` give what was printed."""
    out, err = recording_console(), recording_console()
    monkeypatch.setattr(views, "console", out)
    monkeypatch.setattr(views, "err_console", err)
    return SimpleNamespace(out=out.file.getvalue, err=err.file.getvalue)


def test_every_state_has_one_colour_and_every_colour_a_state():
    assert [state for state in STATES if state not in STATE_STYLES] == []
    assert [state for state in STATE_STYLES if state not in STATES] == []
    for style in STATE_STYLES.values():
        Style.parse(style)  # a style rich knows: an unknown name raises


def test_a_state_is_shown_in_its_colour_and_unsubmitted_in_the_terminals_own():
    console = recording_console(terminal=True)
    console.print(styled("failed"), styled("done"), styled("unsubmitted"))
    assert console.file.getvalue() == "\x1b[31mfailed\x1b[0m \x1b[32mdone\x1b[0m unsubmitted\n"
    with pytest.raises(KeyError):
        styled("no such state")


def test_a_table_is_made_from_its_columns_as_data():
    columns = (
        Column("name", lambda row: row[0]),
        Column("n", lambda row: str(row[1]), justify="right", overflow="fold"),
    )
    made = table("Counts", columns, [("a", 1), ("bb", 22)])
    assert [(c.header, c.justify, c.overflow) for c in made.columns] == [
        ("name", "left", "ellipsis"),
        ("n", "right", "fold"),
    ]
    text = rendered(made)
    assert "Counts" in text and "│ a    │  1 │" in text and "│ bb   │ 22 │" in text


def test_status_shows_a_row_per_run_then_the_totals_in_the_order_they_first_appear(shown):
    lora, full = demo_run("lora"), demo_run("full")
    states = [
        RunState(lora, "failed", "FAILED", "12_0", "ValueError: [bad] value"),
        RunState(full, "done"),
        RunState(full.model_copy(update={"seed": 1}), "failed", "TIMEOUT", "12_1"),
    ]
    views.print_status("demo", states, "run", [])
    out = shown.out()
    assert "demo: 3 runs" in out
    rows = rows_of(out)
    detail = "ValueError: [bad] value"  # brackets of an error message are text, not markup
    assert rows[0] == [
        lora.run_id,
        "minilm-l6",
        "movie_sentiment",
        "lora",
        "0",
        "failed",
        "FAILED",
        "12_0",
        detail,
    ]
    assert [row[5] for row in rows] == ["failed", "done", "failed"]
    assert out.splitlines()[-1] == "2 failed, 1 done"


def test_status_by_keys_counts_each_state_per_group(shown):
    lora, full = demo_run("lora"), demo_run("full")
    states = [RunState(lora, "failed"), RunState(full, "done"), RunState(lora, "done")]
    views.print_status("demo", states, "method", ["method"])
    out = shown.out()
    assert "demo: 3 runs by method" in out
    header = next(line for line in out.splitlines() if line.startswith("┃"))
    assert [c.strip() for c in header.split("┃")[1:-1]] == ["method", *STATES]
    counts = {row[0]: dict(zip(STATES, row[1:], strict=True)) for row in rows_of(out)}
    assert counts["lora"]["failed"] == "1" and counts["lora"]["done"] == "1" and counts["lora"]["lost"] == ""
    assert counts["full"]["done"] == "1" and counts["full"]["failed"] == ""


def memory_row(estimate: MemoryEstimate | None, fit: Fit | None = None, config_from: str = "cache") -> list:
    return [column.cell(MemoryRow(demo_run("lora"), estimate, fit, config_from)) for column in MEMORY_COLUMNS]


def test_the_memory_plan_says_why_a_run_has_no_estimate():
    run_id = demo_run("lora").run_id
    front = [run_id, "minilm-l6", "movie_sentiment", "lora"]
    unsized = ["", "", "", "", "", "", "", "", "?"]
    assert memory_row(None, config_from="unknown") == [*front, *unsized, "config not here: peftbench fetch"]
    assert memory_row(None, config_from="run") == [*front, *unsized, "after its parent"]


def test_the_memory_plan_shows_each_part_in_gb_and_whether_it_fits():
    estimate = MemoryEstimate(
        2 * GB,
        GB,
        GB // 2,
        gpus=2,
        backend="ddp",
        trainable=1,
        total_params=1,
        evaluation_bound=True,
        training_activations=GB // 4,
        evaluation_activations=GB // 2,
        kv_cache=GB // 5,
    )
    # activations, then the generation's key-value cache, the training and the evaluation peaks
    sized = ["ddp", "2", "2.0", "1.0", "0.5", "0.2", "3.2", "3.5", "3.5"]
    assert memory_row(estimate)[4:] == [*sized, ""]  # the profile names no GPU memory: no verdict
    assert memory_row(estimate, Fit(estimate, 8 * GB, None))[-1] == "[green]yes[/]"
    small = Fit(estimate, 2 * GB, "batch_size: 8 -> 2")
    assert memory_row(estimate, small)[-1] == "[red]no[/]: batch_size: 8 -> 2"
    assert [c.header for c in MEMORY_COLUMNS if c.justify == "right"] == [
        "GPUs",
        "weights",
        "state",
        "activ.",
        "KV cache",
        "train peak",
        "eval peak",
        "total",
    ]


def planned(done_seeds: set[int]) -> list[PlanRow]:
    """Two learning rates × two seeds of one method, and one run of another."""
    runs = [
        demo_run("lora", learning_rate=lr).model_copy(update={"seed": seed})
        for lr in (1e-4, 2e-4)
        for seed in (0, 1)
    ]
    runs.append(demo_run("full"))
    return [PlanRow(run, run.run_id, run.seed in done_seeds and run.label == "lora") for run in runs]


def test_a_short_plan_has_a_row_per_run(shown):
    plan = SimpleNamespace(
        spec=SimpleNamespace(name="demo"), profile=SimpleNamespace(name="local"), disk=None
    )
    runs = planned(done_seeds={1})
    views.print_plan(plan, runs)
    out = shown.out()
    assert "demo: 5 runs on 'local'" in out
    rows = rows_of(out)
    assert [row[0] for row in rows] == [p.run_id for p in runs]
    assert [row[5:] for row in rows[:2]] == [["0.0001", "0", ""], ["0.0001", "1", "✓"]]
    assert "r=8" in rows[0][4] and rows[4][3] == "full"


def test_a_long_plan_has_a_row_per_model_task_and_method(shown, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(views, "PLAN_ROWS", 4)
    plan = SimpleNamespace(
        spec=SimpleNamespace(name="demo"), profile=SimpleNamespace(name="local"), disk=None
    )
    views.print_plan(plan, planned(done_seeds={1}))
    out = shown.out()
    assert "demo: 5 runs on 'local'" in out
    assert rows_of(out) == [
        ["minilm-l6", "movie_sentiment", "lora", "4", "2", "2", "2"],
        ["minilm-l6", "movie_sentiment", "full", "1", "1", "1", ""],
    ]


def test_the_profiles_table_and_where_they_were_searched(shown):
    found = SimpleNamespace(name="vega", origin="packaged", path=Path("/p/vega.yaml"), shadows=["user"])
    views.print_profiles([found], "/a, /b [x]")
    out = shown.out()
    assert rows_of(out) == [["vega", "packaged", "/p/vega.yaml", "user"]]
    assert out.splitlines()[-1] == "Searched, in order: /a, /b [x]"


def test_a_collection_says_what_has_no_result_yet_and_what_could_not_be_read(shown):
    report = SimpleNamespace(
        table="| a | b |",
        counts=lambda: "1 successful of 1 results",
        outputs=[Path("runs/x/table.md")],
        unfinished=["runs/x/1", "runs/x/2"],
        unreadable=["runs/x/3/result.json: [broken]"],
    )
    views.print_collection(report, {"running": 1, "no job record": 1})
    assert shown.out().splitlines() == [
        "| a | b |",
        "1 successful of 1 results; written: runs/x/table.md",
        "2 run(s) of the sweep have no result yet (1 no job record, 1 running); "
        "`peftbench status` follows them.",
    ]
    assert shown.err().splitlines() == [
        "1 result file(s) could not be read and were left out:",
        "  - runs/x/3/result.json: [broken]",
    ]


def test_problems_and_plain_messages_keep_their_brackets(shown):
    views.print_problem("Invalid configuration", "key [0]: bad")
    views.print_plain("Traceback [x]", stderr=True)
    views.print_plain("[green]ok[/]")
    assert shown.err().splitlines() == ["Invalid configuration — key [0]: bad", "Traceback [x]"]
    assert shown.out() == "[green]ok[/]\n"


def test_status_says_in_one_line_which_query_was_not_read_and_what_it_shows_instead(shown):
    said = "exit 1: slurm_load_jobs error: Socket timed out on send/recv operation"
    views.print_unread(SweepReport([], [QueryFailure("squeue", said, silent=True, seconds=10.2)]))
    assert shown.err().splitlines() == [  # one line, though longer than the console's 200 columns
        f"Scheduler not fully read — squeue: {said} (after 10 s; slurmctld is not asked again in this "
        "command); shown instead: sacct's states, which can lag the queue by a few seconds"
    ]
    assert shown.out() == ""
    refused = QueryFailure("sacct", "exit 1: sacct: error: Invalid user id")
    assert views.unread_line(SweepReport([], [refused])) == (
        "sacct: exit 1: sacct: error: Invalid user id; "
        "shown instead: squeue's live jobs only: a run whose job has ended without a result is unknown"
    )
