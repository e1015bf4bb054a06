"""The four study sweeps: each validates, dry-runs, states the study's settings, and its reduced
copy (tests/fixtures/sweeps/) runs end to end on CPU: validated and planned as `peftbench sweep`
does, run by the local launcher, collected into a table. Runs execute in this process (the launcher
takes the executor): a subprocess per run would import torch and transformers again each time,
about 6 s of ~40 runs; tests/test_cli.py runs the demo through the command and its subprocesses."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from peftbench.collect.outputs import write_collection
from peftbench.core.errors import ConfigError
from peftbench.core.paths import RunPaths
from peftbench.core.results import RunResult
from peftbench.core.spec import RunSpec
from peftbench.launch.local import run_local
from peftbench.plan.loading import load_sweep
from peftbench.plan.profiles import PACKAGED
from peftbench.plan.sweep_plan import load_plan
from peftbench.run.one import run_one
from tests.conftest import REPO, write_yaml

STUDIES = {p.stem: p for p in sorted((REPO / "configs" / "sweeps").glob("*.yaml")) if p.stem != "demo"}
REDUCED = {p.stem: p for p in sorted((REPO / "tests" / "fixtures" / "sweeps").glob("*.yaml"))}
OFFLINE_DECODER = "smollm2-135m"


def peftbench(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    command = [sys.executable, "-m", "peftbench", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, timeout=900)


def run_in_this_process(spec: RunSpec, paths: RunPaths, on_progress: object) -> RunResult:
    return run_one(spec, paths.root)


def runs_of(*stems: str) -> list[RunSpec]:
    return [run for stem in stems for run in load_sweep(STUDIES[stem]).runs]


def test_every_study_sweep_has_a_reduced_copy():
    assert (
        set(STUDIES)
        == set(REDUCED)
        == {
            "hulu-puli",
            "slovene-bertic",
            "slovene-bertic-xsum",
            "slobench-sloberta",
            "slobench-sloberta-translation",
            "belle-instruct",
            "belle-instruct-extras",
        }
    )


@pytest.mark.parametrize("stem", sorted(STUDIES))
def test_study_sweep_validates_and_dry_runs(stem: str, tmp_path: Path):
    """On a GPU site (Vega's profile, its site facts filled): the studies' multi-GPU runs need Slurm."""
    runs = runs_of(stem)
    vega = tmp_path / "vega.yaml"
    vega.write_text((PACKAGED / "vega.yaml").read_text().replace("FILL_ME", "x"))
    out = peftbench(
        "sweep", str(STUDIES[stem]), "--cluster", str(vega), "--dry-run", "--runs-dir", str(tmp_path)
    )
    assert out.returncode == 0, out.stderr
    assert f"{load_sweep(STUDIES[stem]).spec.name}: {len(runs)} runs on 'vega'" in out.stdout


def test_hulu_puli_full_on_four_gpus_with_fsdp_vs_lora_r8_with_each_tasks_metric():
    runs = runs_of("hulu-puli")
    assert {r.model.source for r in runs} == {
        "NYTK/PULI-GPT-3SX",
        "NYTK/PULI-LlumiX-32K",
        "NYTK/PULI-LlumiX-Llama-3.1",
    }
    assert {r.task.name: r.task.metric for r in runs} == {
        "hucola": "mcc",
        "hucopa": "mcc",
        "hurte": "mcc",
        "husst": "accuracy",
        "huwnli": "accuracy",
    }
    full = [r for r in runs if r.label == "full"]
    lora = [r for r in runs if r.label == "lora"]
    assert {(r.training.distributed, r.resources.gpus) for r in full} == {("fsdp", 4)}
    assert {(r.params["r"], r.params["lora_alpha"], r.params["lora_dropout"]) for r in lora} == {(8, 32, 0.1)}
    assert len({r.training.learning_rate for r in full}) == len({r.training.learning_rate for r in lora}) == 3
    assert len(runs) == 3 * 5 * (3 + 3)


def test_slovene_bertic_runs_four_methods_at_the_studys_settings_with_xsum_on_a_seq2seq_model():
    runs = runs_of("slovene-bertic", "slovene-bertic-xsum")
    assert {r.label for r in runs} == {"full", "lora", "bitfit", "prompt_tuning"}
    settings = {
        (t.learning_rate, t.batch_size, t.epochs, t.weight_decay, t.eval_strategy)
        for t in (r.training for r in runs)
    }
    assert settings == {(2e-5, 64, 20, 0.01, "epoch")}
    lora = {
        (r.params["r"], r.params["lora_alpha"], r.params["lora_dropout"], r.params["bias"])
        for r in runs
        if r.method == "lora"
    }
    assert lora == {(16, 32, 0.1, "lora_only")}
    # The study's CoNLL-2012 column is coreference; ssj500k NER stays as an extra row.
    assert {r.task.metric for r in runs if r.task.type == "coreference"} == {"conll_f1"}
    assert {r.params["target_modules"] for r in runs if r.method == "lora"} == {None}  # peft's default
    assert {r.task.name: r.task.averaging for r in runs}["slo_boolq"] == "binary"
    assert {(r.model.name, r.task.name) for r in runs} == {
        *(("bertic", t) for t in ("slo_boolq", "sst5", "commonsense_qa", "conll2012_en", "senticoref")),
        ("bertic", "slo_ner"),
        ("bart-base", "xsum"),
    }


def test_slovene_bertic_runs_as_the_study_ran_on_arnes_in_fp32_without_warmup():
    runs = runs_of("slovene-bertic", "slovene-bertic-xsum")
    for stem in ("slovene-bertic", "slovene-bertic-xsum"):  # where the study ran
        assert STUDIES[stem].read_text().splitlines()[0].endswith(f"{stem}.yaml --cluster arnes")
    # Listing 2's TrainingArguments: no precision, no warm-up (transformers' defaults: fp32, 0).
    assert {(r.training.precision, r.training.warmup_ratio) for r in runs} == {("fp32", 0.0)}
    coreference = {r.task.name for r in runs if r.task.type == "coreference" and r.method == "prompt_tuning"}
    assert coreference == {"conll2012_en", "senticoref"}  # CoNLL-2012 the study's; SentiCoref an extra


def test_slobench_sloberta_compares_lora_variants_and_prompt_methods_with_the_untuned_model():
    runs = runs_of("slobench-sloberta", "slobench-sloberta-translation")
    by_label = {r.label: r for r in runs}
    assert set(by_label) >= {"lora", "rslora", "dora", "bitfit", "prefix_tuning", "prompt_tuning", "p_tuning"}
    assert {"adalora", "qlora"} <= {r.method for r in runs}
    assert {r.resources.gpus for r in runs if r.method == "qlora"} == {1}  # bitsandbytes: CUDA only
    assert {"none", "full"} <= set(by_label)
    assert by_label["rslora"].method == by_label["dora"].method == "lora"
    assert by_label["rslora"].params["use_rslora"] and by_label["dora"].params["use_dora"]
    encoders = {r.model.name for r in runs if r.task.type != "generation"}
    assert encoders == {"sloberta", "xlm-roberta-base"}
    tasks = {r.task.name for r in runs if r.task.type != "generation"}
    assert tasks == {
        *("slo_boolq", "slo_cb", "slo_copa", "slo_rte", "slo_multirc", "slo_wsc", "slo_wic", "slo_record")
    }
    assert {r.model.family for r in runs if r.task.name == "slo_en_translation"} == {"t5", "mt5"}


def test_belle_instruct_is_table_4s_eight_rows_with_the_studys_settings():
    runs = runs_of("belle-instruct")
    rows = {(r.model.name, r.method, r.task.name) for r in runs if r.task.name != "belle_math_0.25m"}
    assert rows == {
        ("llama-13b", "lora", "belle_2m"),
        *(("llama-7b", "lora", s) for s in ("belle_0.6m", "belle_2m", "belle_4m")),
        *(("llama-7b", "full", s) for s in ("belle_0.6m", "belle_2m")),
    }
    math = {r.label: r for r in runs if r.task.name == "belle_math_0.25m"}
    assert set(math) == {"ft_lora_math", "ft_ft_math"} and len(runs) == 8
    parent = next(r for r in runs if r.label == "full" and r.task.name == "belle_2m")
    assert {r.model.source for r in math.values()} == {f"run:{parent.run_id}"}
    global_batch = {
        (r.method, t.precision, t.epochs, t.batch_size * t.gradient_accumulation_steps * r.world_size)
        for r in runs
        if r.label in ("full", "lora", "lora_13b")
        for t in [r.training]
    }
    assert global_batch == {("full", "bf16", 3, 32), ("lora", "fp16", 4, 128)}
    assert {(r.training.learning_rate, r.params["r"]) for r in runs if r.method == "lora"} == {(2e-4, 8)}
    baize = ("q_proj", "k_proj", "v_proj", "down_proj", "gate_proj", "up_proj")  # the study's 17.9M / 28M
    assert {tuple(r.params["target_modules"]) for r in runs if r.method == "lora"} == {baize}
    assert (math["ft_ft_math"].training.learning_rate, math["ft_ft_math"].training.epochs) == (5e-7, 2)
    assert {(r.training.lr_scheduler, r.training.max_length) for r in runs} == {("cosine", 1024)}
    assert {r.training.distributed for r in runs if r.method == "full"} == {"zero3"}
    assert {r.world_size for r in runs} == {8}
    # Evaluation: one common set, temperature 0.001, answers longer than 64 tokens, the judge by category.
    assert {(r.task.test_source.hub, r.task.splits["test"]) for r in runs} == {("data/belle_eval", "test")}  # type: ignore[union-attr]
    assert {(r.training.temperature, r.training.max_new_tokens) for r in runs} == {(0.001, 512)}
    assert {r.task.metric for r in runs} == {"judge"}
    assert {json.dumps(r.task.judge.category_groups) for r in runs} == {
        '{"math": "others", "code": "others"}'
    }  # type: ignore[union-attr]


def test_belle_lora_rows_train_the_studys_17_9m_and_28m_on_the_meta_device():
    """Table 4's added parameters: 17.9M on LLaMA-7B and 28M on 13B, exactly what Baize's modules (q, k,
    v, down, gate, up; r=8) train: 17,891,328 and 28,016,640 (all-linear adds o_proj: 19,988,480 and
    31,293,440). Each row's own method params applied to the model of models/shapes.json on the meta
    device, no weights."""
    import torch
    from transformers import AutoConfig, LlamaForCausalLM

    from peftbench.methods import METHODS
    from peftbench.models.families import FAMILY_TRAITS
    from peftbench.models.loading import LoadedModel
    from peftbench.models.shapes import shipped_shapes
    from peftbench.run.accounting import count_parameters

    counted = {}
    for run in runs_of("belle-instruct"):
        if run.method != "lora" or run.model.name in counted:
            continue
        facts = dict(shipped_shapes()[run.model.source])
        config = AutoConfig.for_model(facts.pop("model_type"), **facts)
        with torch.device("meta"):
            loaded = LoadedModel(LlamaForCausalLM(config), "config", (), "CAUSAL_LM", FAMILY_TRAITS["llama"])
        lora = METHODS["lora"]
        with torch.device("meta"):
            prepared = lora.prepare(loaded, lora.Params.model_validate(run.params))
        counted[run.model.name] = count_parameters(prepared)[0]
    assert counted == {"llama-7b": 17_891_328, "llama-13b": 28_016_640}


def test_belle_extras_are_only_rows_the_study_left_empty():
    study = {(r.model.name, r.method, r.task.name) for r in runs_of("belle-instruct")}
    extras = {(r.model.name, r.method, r.task.name) for r in runs_of("belle-instruct-extras")}
    assert extras == {
        ("llama-7b", "full", "belle_4m"),
        ("llama-13b", "lora", "belle_0.6m"),
        ("llama-13b", "lora", "belle_4m"),
        ("llama-13b", "full", "belle_0.6m"),
        ("llama-13b", "full", "belle_2m"),
    }
    assert not extras & study
    same = {
        (r.task.model_dump_json(), r.training.temperature)
        for r in runs_of("belle-instruct", "belle-instruct-extras")
        if r.task.name == "belle_2m"
    }
    assert len(same) == 1  # one task definition, one evaluation set, one judge in both files


def test_belle_lora_rows_as_configured_are_refused_with_a_batch_that_fits(tmp_path: Path):
    """The study's 16 sequences of 1024 tokens per GPU: about 91 GB on LLaMA-7B, refused on a 40 GB
    A100 with the per-device batch and accumulation that keep its global batch of 128."""
    data = yaml.safe_load(STUDIES["belle-instruct"].read_text(encoding="utf-8"))
    data["methods"] = {
        "lora": {**data["methods"]["lora"], "batch_size": 16, "gradient_accumulation_steps": 1}
    }
    data["methods"]["lora"]["tasks"] = ["belle_2m"]
    profile = (PACKAGED / "vega.yaml").read_text(encoding="utf-8").replace("FILL_ME", "x")
    (tmp_path / "vega.yaml").write_text(profile, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_plan(write_yaml(tmp_path / "belle.yaml", data), str(tmp_path / "vega.yaml"))
    [problem] = info.value.problems
    assert "llama-7b on belle_2m needs about 91.0 GB per GPU" in problem.message
    assert "(weights 13.5, training state 0.3, activations 77.2) with ddp on 8 GPU(s)" in problem.message
    assert (
        "Smallest that fits: batch_size: 4, gradient_accumulation_steps: 4 (about 33.1 GB per GPU; "
        "global batch 4 × 4 × 8 GPUs = 128, as before)" in problem.message
    )


@pytest.mark.slow
@pytest.mark.parametrize("stem", sorted(REDUCED))
def test_reduced_study_runs_end_to_end_on_cpu(stem: str, tmp_path: Path, request):
    data = yaml.safe_load(REDUCED[stem].read_text(encoding="utf-8"))
    if OFFLINE_DECODER in data["models"]:  # SmolLM2 costs seconds per step on CPU: a 2-layer Llama here
        decoder = request.getfixturevalue("tiny_decoder")
        tiny = {"name": "tiny-llama", "source": str(decoder), "family": "llama"}
        data["models"] = [tiny if m == OFFLINE_DECODER else m for m in data["models"]]
    sweep = write_yaml(tmp_path / f"{stem}.yaml", data)
    plan = load_plan(sweep, "local", tmp_path / "runs")
    expected = plan.runs
    console = Console(file=io.StringIO(), width=200)
    summary = run_local(plan.runs, plan.runs_dir, console, execute=run_in_this_process)
    assert summary.failed == [], console.file.getvalue()[-4000:]
    report = write_collection([plan.sweep_dir], plan.sweep_dir)
    assert report.n_success == len(expected)
    results = [json.loads(p.read_text()) for p in plan.sweep_dir.glob("*/result.json")]
    assert sorted(r["run_id"] for r in results) == sorted(r.run_id for r in expected)
    for result in results:
        assert result["status"] == "success"
        assert result["spec"]["task"]["metric"] in result["test"]
        averaging = result["spec"]["task"].get("averaging")  # slovene-bertic's BoolQ: binary, as the study
        assert averaging is None or {f"{m}_{averaging}" for m in ("precision", "recall", "f1")} <= set(
            result["test"]
        )


def test_hulu_puli_full_runs_fit_the_site_its_header_names_as_the_study_ran_them(tmp_path: Path):
    """The study: full fine-tuning on 4 x A100 80 GB. The header's site (Arnes, 80 GB GPUs) takes every
    run; Komondor's 40 GB A100s refuse the 4-GPU full runs and name the multi-node shape that would fit."""
    header = STUDIES["hulu-puli"].read_text().splitlines()[0]
    assert header == "# peftbench sweep configs/sweeps/hulu-puli.yaml --cluster arnes"
    for site in ("arnes", "komondor"):
        (tmp_path / f"{site}.yaml").write_text(
            (PACKAGED / f"{site}.yaml").read_text().replace("FILL_ME", "x")
        )
    # force: this machine's disk is no site's (the disk check is tests/test_disk.py's)
    plan = load_plan(
        STUDIES["hulu-puli"], str(tmp_path / "arnes.yaml"), tmp_path / "runs", submitting=False, force=True
    )
    assert plan.warnings == [] and len(plan.runs) == 90
    komondor = load_plan(
        STUDIES["hulu-puli"], str(tmp_path / "komondor.yaml"), tmp_path / "runs", submitting=False, force=True
    )
    refused = [str(w) for w in komondor.warnings]
    assert refused and all("methods.full" in w and re.search(r"nodes: [23]\.$", w) for w in refused)
    # HuCOPA forwards both choices of each example: twice the activations, so the largest model needs
    # a third node there
    assert [w for w in refused if "nodes: 3" in w] == [
        w for w in refused if "puli-llumix-llama-3.1 on hucopa" in w
    ]
