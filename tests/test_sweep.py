"""Grid expansion: counts, unique and stable run ids, grid semantics, per-method overrides."""

from __future__ import annotations

import subprocess
import sys

from peftbench.plan.loading import load_sweep

GRID = {
    "name": "grid",
    "models": ["minilm-l6"],
    "tasks": ["movie_sentiment", "epistemic_nli"],
    "methods": {
        "full": {"learning_rate": [1e-5, 5e-5]},
        "lora": {"r": [4, 8, 16], "lora_alpha": 32, "learning_rate": [1e-4, 5e-4]},
        "bitfit": {},
    },
    "seeds": [0, 1],
    "training": {"epochs": 2, "batch_size": 16},
}


def test_count_is_the_product_of_the_grids(sweep_file):
    runs = load_sweep(sweep_file(GRID)).runs
    # tasks × (full 2 + lora 3×2 + bitfit 1) × seeds
    assert len(runs) == 2 * (2 + 6 + 1) * 2
    assert len({r.run_id for r in runs}) == len(runs)


def test_run_ids_are_stable_across_key_order_and_reexpansion(sweep_file):
    first = [r.run_id for r in load_sweep(sweep_file(GRID, "a.yaml")).runs]
    shuffled = {k: GRID[k] for k in reversed(list(GRID))}
    shuffled["methods"] = {
        "lora": {"learning_rate": [1e-4, 5e-4], "lora_alpha": 32, "r": [4, 8, 16]},
        "bitfit": {},
        "full": {"learning_rate": [1e-5, 5e-5]},
    }
    second = [r.run_id for r in load_sweep(sweep_file(shuffled, "b.yaml")).runs]
    assert sorted(first) == sorted(second)


def test_run_id_does_not_depend_on_sweep_name_or_resources(sweep_file):
    a = load_sweep(sweep_file(GRID, "a.yaml")).runs
    other = {**GRID, "name": "another", "resources": {"gpus": 4, "time_min": 600}}
    b = load_sweep(sweep_file(other, "b.yaml")).runs
    assert [r.run_id for r in a] == [r.run_id for r in b]


def test_run_id_is_the_same_in_another_process(sweep_file):
    path = sweep_file(GRID)
    code = (
        "import sys; from pathlib import Path; from peftbench.plan.loading import load_sweep;"
        "print(' '.join(r.run_id for r in load_sweep(Path(sys.argv[1])).runs))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [r.run_id for r in load_sweep(path).runs]


def test_run_id_changes_with_what_decides_the_result(sweep_file):
    base = load_sweep(sweep_file(GRID, "a.yaml")).runs
    changed = {**GRID, "training": {"epochs": 3, "batch_size": 16}}
    other = load_sweep(sweep_file(changed, "b.yaml")).runs
    assert not {r.run_id for r in base} & {r.run_id for r in other}


def test_per_method_training_overrides_and_defaults(sweep_file):
    runs = load_sweep(sweep_file(GRID)).runs
    lora = [r for r in runs if r.label == "lora"]
    assert {r.training.learning_rate for r in lora} == {1e-4, 5e-4}
    assert all(r.training.epochs == 2 and r.training.batch_size == 16 for r in runs)
    assert {r.params["r"] for r in lora} == {4, 8, 16}
    assert all(r.params["lora_alpha"] == 32 and r.params["lora_dropout"] == 0.1 for r in lora)


def test_a_list_valued_parameter_is_one_value_and_a_list_of_lists_a_grid(sweep_file):
    one = {**GRID, "methods": {"lora": {"target_modules": ["query", "value"]}}, "seeds": [0]}
    runs = load_sweep(sweep_file(one, "a.yaml")).runs
    assert [r.params["target_modules"] for r in runs] == [["query", "value"]] * 2
    grid = {**one, "methods": {"lora": {"target_modules": [["query", "value"], "all-linear"]}}}
    runs = load_sweep(sweep_file(grid, "b.yaml")).runs
    assert [r.params["target_modules"] for r in runs][:2] == [["query", "value"], "all-linear"]


def test_labelled_variants_of_one_method(sweep_file):
    data = {
        **GRID,
        "methods": {
            "lora_attn": {"method": "lora", "target_modules": ["query", "value"]},
            "lora_all": {"method": "lora", "target_modules": "all-linear"},
        },
    }
    runs = load_sweep(sweep_file(data)).runs
    assert {r.label for r in runs} == {"lora_attn", "lora_all"} and {r.method for r in runs} == {"lora"}


def test_duplicate_points_are_refused(sweep_file):
    import pytest

    from peftbench.core.errors import ConfigError

    data = {**GRID, "methods": {"a": {"method": "bitfit"}, "b": {"method": "bitfit"}}}
    with pytest.raises(ConfigError, match="Duplicate run"):
        load_sweep(sweep_file(data))


def test_a_method_block_may_run_on_some_of_the_models(sweep_file):
    import pytest

    from peftbench.core.errors import ConfigError

    data = {
        **GRID,
        "models": ["minilm-l6", "xlm-roberta-base"],
        "methods": {"full": {"models": ["xlm-roberta-base"], "tasks": ["epistemic_nli"]}, "bitfit": {}},
        "seeds": [0],
    }
    runs = load_sweep(sweep_file(data)).runs
    assert sorted((r.label, r.model.name, r.task.name) for r in runs if r.label == "full") == [
        ("full", "xlm-roberta-base", "epistemic_nli")
    ]
    assert len(runs) == 1 + 2 * 2  # bitfit on every model and task
    data["methods"]["full"]["models"] = ["xlmr"]
    with pytest.raises(ConfigError) as info:
        load_sweep(sweep_file(data))
    assert "methods.full.models: Model 'xlmr' is not one of the sweep's models." in str(info.value)
    assert "xlm-roberta-base" in str(info.value)  # the allowed names are listed


def test_a_block_names_its_tasks_as_one_name_or_a_list_of_names(sweep_file):
    import pytest

    from peftbench.core.errors import ConfigError

    data = {**GRID, "methods": {"full": {"tasks": "epistemic_nli"}}, "seeds": [0]}
    assert [r.task.name for r in load_sweep(sweep_file(data)).runs] == ["epistemic_nli"]
    for wrong in (3, [], ["epistemic_nli", 3]):
        data["methods"]["full"]["tasks"] = wrong
        with pytest.raises(ConfigError) as info:
            load_sweep(sweep_file(data))
        assert f"methods.full.tasks: Give a list of task names (got {wrong!r})." in str(info.value)


def test_an_inline_model_in_a_missing_local_folder_is_refused(sweep_file, tmp_path):
    import pytest

    from peftbench.core.errors import ConfigError

    folder = str(tmp_path / "no-such-model")
    model = {"name": "mine", "source": folder, "family": "bert"}
    data = {**GRID, "models": [model], "methods": {"bitfit": {}}}
    with pytest.raises(ConfigError) as info:
        load_sweep(sweep_file(data))
    assert f"models[0].source: No model folder at {folder!r}." in str(info.value)
