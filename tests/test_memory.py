"""The ZeRO-3 model-state estimate against hand-computed figures for two real 7-8B models."""

from __future__ import annotations

import pytest
from transformers import BertConfig, LlamaConfig

from peftbench.plan.memory import count_from_config, zero3_model_states_bytes
from peftbench.plan.profiles import PACKAGED

# The published architectures (config.json of meta-llama/Llama-2-7b-hf and Llama-3.1-8B).
LLAMA2_7B = LlamaConfig(
    vocab_size=32000,
    hidden_size=4096,
    intermediate_size=11008,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=32,
    architectures=["LlamaForCausalLM"],
)
LLAMA31_8B = LlamaConfig(
    vocab_size=128256,
    hidden_size=4096,
    intermediate_size=14336,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    architectures=["LlamaForCausalLM"],
)


# By hand: 18 bytes × params ÷ GPUs + 4 bytes × (vocab × hidden), i.e. 121.8 / 30.85 GB for Llama-2-7B
# and 146.6 / 38.2 GB for Llama-3.1-8B on one / four GPUs.
@pytest.mark.parametrize(
    ("config", "total", "one_gpu", "four_gpus"),
    [
        (LLAMA2_7B, 6_738_415_616, 121_815_769_088, 30_847_158_272),
        (LLAMA31_8B, 8_030_261_248, 146_646_048_768, 38_237_521_920),
    ],
)
def test_zero3_model_states_match_hand_computed(config, total, one_gpu, four_gpus):
    params = count_from_config(config)
    assert params.total == total
    assert params.largest_layer == config.vocab_size * config.hidden_size
    assert zero3_model_states_bytes(params, 1) == one_gpu
    assert zero3_model_states_bytes(params, 4) == four_gpus
    assert zero3_model_states_bytes(params, 2, nodes=2) == zero3_model_states_bytes(params, 4)
    assert zero3_model_states_bytes(params, 4, offload=True) == 4 * params.largest_layer


def _llama_run(tmp_path, method: str, distributed: str | None, gpus: int, **params):
    """A run of Llama-2-7B (its config only, in a local folder) on a classification task."""
    from peftbench.core.spec import ModelRef, ResourceRequest, RunSpec, TrainingSettings
    from peftbench.tasks import TASK_CATALOG

    folder = tmp_path / "llama-2-7b"
    LLAMA2_7B.save_pretrained(folder)
    return RunSpec(
        sweep="plan",
        model=ModelRef(name="llama-2-7b", source=str(folder), family="llama"),
        task=TASK_CATALOG["movie_sentiment"],
        method=method,
        label=method,
        params=params,
        training=TrainingSettings(batch_size=4, max_length=512, precision="bf16", distributed=distributed),
        seed=0,
        resources=ResourceRequest(gpus=gpus),
    )


def test_full_fine_tuning_under_zero3_is_deepspeeds_estimate_plus_activations(tmp_path):
    from peftbench.plan.memory import activation_bytes, estimate_run

    run = _llama_run(tmp_path, "full", "zero3", 4)
    estimate = estimate_run(run, LLAMA2_7B, 4)
    assert estimate.weights + estimate.training_state == zero3_model_states_bytes(
        count_from_config(LLAMA2_7B), 4
    )
    # 34 bytes per token per hidden unit per layer in bf16 (a classification head: no vocabulary logits);
    # the evaluation batch, 128 × 512 tokens through one layer at a time, comes to the same here
    tokens = 4 * 512
    assert activation_bytes(run, LLAMA2_7B, mixed=True) == tokens * 34 * 4096 * 32 == 128 * 512 * 34 * 4096
    assert estimate.trainable == estimate.total_params == 6_738_415_616


def test_lora_trainable_count_comes_from_applying_it_on_the_meta_device(tmp_path):
    from peftbench.plan.memory import estimate_run

    run = _llama_run(tmp_path, "lora", None, 1, r=8, target_modules=["q_proj", "v_proj"])
    estimate = estimate_run(run, LLAMA2_7B, 1)
    assert estimate.trainable == 32 * 2 * 8 * (4096 + 4096)  # layers × (q, v) × r × (in + out)
    assert estimate.weights == 2 * 6_738_415_616


def test_the_planner_refuses_what_cannot_fit_and_names_the_smallest_fit(tmp_path, sweep_file):
    from peftbench.core.errors import ConfigError
    from peftbench.plan.sweep_plan import load_plan

    _llama_run(tmp_path, "full", None, 1)  # writes the config folder
    profile = (PACKAGED / "vega.yaml").read_text().replace("FILL_ME", "x")
    (tmp_path / "vega.yaml").write_text(profile)
    sweep = sweep_file(
        {
            "name": "big",
            "models": [{"name": "llama-2-7b", "source": str(tmp_path / "llama-2-7b"), "family": "llama"}],
            "tasks": ["movie_sentiment"],
            "methods": {
                "full": {"distributed": "zero3", "resources": {"gpus": 1}},
                "lora": {"r": 8, "target_modules": ["q_proj", "v_proj"], "resources": {"gpus": 1}},
            },
            "training": {"batch_size": 4, "max_length": 512, "precision": "bf16"},
        }
    )
    with pytest.raises(ConfigError) as info:
        load_plan(sweep, str(tmp_path / "vega.yaml"), force=True)  # the disk's refusal: tests/test_disk.py
    [problem] = info.value.problems
    assert problem.key == "methods.full"
    # 121.8 GB of model states + 9.1 GB of activations on one 40 GB A100. By hand, per GPU on N:
    # 121.8 / N + 0.5 (gathered embedding) + 9.1: N = 4 gives 40.1 GB, N = 5 gives 34.0 GB, under
    # the 36 GB (90 %) limit; 5 GPUs on nodes of 4 is 2 nodes of 3.
    assert "needs about 130.9 GB per GPU" in problem.message
    assert "(weights 14.0, training state 107.8, activations 9.1)" in problem.message
    assert "Smallest that fits: distributed: zero3 with gpus: 3, nodes: 2" in problem.message
    plan = load_plan(sweep, str(tmp_path / "vega.yaml"), check_memory=False, force=True)
    assert len(plan.runs) == 2


def test_a_smaller_batch_keeps_the_global_batch_and_recomputes_only_when_no_batch_fits_without(tmp_path):
    from peftbench.plan.memory import FILL_FRACTION, GB, estimate_run, smaller_batch

    run = _llama_run(tmp_path, "lora", None, 1, r=8, target_modules=["q_proj", "v_proj"])
    run = run.model_copy(update={"training": run.training.model_copy(update={"eval_batch_size": 1})})
    params, trainable = count_from_config(LLAMA2_7B), estimate_run(run, LLAMA2_7B, 1).trainable

    def total(batch: int, recompute: bool) -> int:
        shape = {"batch_size": batch, "gradient_checkpointing": recompute}
        trial = run.model_copy(update={"training": run.training.model_copy(update=shape)})
        return estimate_run(trial, LLAMA2_7B, 1).total

    def just_fits(batch: int, recompute: bool) -> int:
        return int(total(batch, recompute) / FILL_FRACTION) + 1

    assert total(4, True) < total(1, False)  # so recomputation at batch 4 beats every smaller batch
    assert smaller_batch(run, LLAMA2_7B, just_fits(2, False), params, trainable) == (
        f"batch_size: 2, gradient_accumulation_steps: 2 (about {total(2, False) / GB:.1f} GB per GPU; "
        "global batch 2 × 2 × 1 GPUs = 4, as before)"
    )
    assert smaller_batch(run, LLAMA2_7B, just_fits(4, True), params, trainable) == (
        f"gradient_checkpointing: true (about {total(4, True) / GB:.1f} GB per GPU; "
        "global batch 4 × 1 × 1 GPUs = 4, as before)"
    )
    assert smaller_batch(run, LLAMA2_7B, just_fits(1, True) - 2, params, trainable) is None


# The activations of choice and cloze tasks: every (context, choice) or (passage, candidate) sequence
# goes through the encoder, so a micro-batch is batch × sequences per example × max_length tokens.
BERT_BASE = BertConfig()  # transformers' defaults are bert-base's: 12 layers, hidden 768
SETTINGS = {"batch_size": 8, "eval_batch_size": 8, "max_length": 128, "precision": "bf16"}


def _run_of(task, family: str = "bert", **training):
    from peftbench.core.spec import ModelRef, RunSpec, TrainingSettings

    return RunSpec(
        sweep="plan",
        model=ModelRef(name="m", source="m", family=family),
        task=task,
        method="full",
        label="full",
        params={},
        training=TrainingSettings(**{**SETTINGS, **training}),
        seed=0,
    )


def test_a_choice_example_costs_one_sequence_per_choice():
    from peftbench.plan.memory import activation_bytes, training_activation_bytes
    from peftbench.tasks import TASK_CATALOG

    pair, copa, csqa = (_run_of(TASK_CATALOG[n]) for n in ("slo_rte", "copa", "commonsense_qa"))
    one = training_activation_bytes(pair, BERT_BASE, mixed=True)
    assert one == 8 * 128 * 34 * 768 * 12  # batch × length × 34 bytes × hidden × layers
    assert activation_bytes(copa, BERT_BASE, mixed=True) == 2 * activation_bytes(pair, BERT_BASE, mixed=True)
    assert activation_bytes(csqa, BERT_BASE, mixed=True) == 5 * activation_bytes(pair, BERT_BASE, mixed=True)


def test_a_cloze_example_costs_its_capped_candidates_in_training_and_all_in_evaluation():
    from peftbench.plan.memory import (
        ASSUMED_SEQUENCES,
        evaluation_activation_bytes,
        training_activation_bytes,
    )
    from peftbench.tasks import TASK_CATALOG

    record = TASK_CATALOG["slo_record"]
    capped, uncapped = _run_of(record.model_copy(update={"max_train_choices": 4})), _run_of(record)
    one = 8 * 128 * 34 * 768 * 12
    assert training_activation_bytes(capped, BERT_BASE, mixed=True) == 4 * one
    assert training_activation_bytes(uncapped, BERT_BASE, mixed=True) == ASSUMED_SEQUENCES * one
    every = 8 * ASSUMED_SEQUENCES * 128 * 34 * 768  # one layer at a time, all candidates
    assert evaluation_activation_bytes(capped, BERT_BASE, mixed=True) == every
    assert evaluation_activation_bytes(uncapped, BERT_BASE, mixed=True) == every


def test_the_planners_count_is_what_the_cloze_collator_forwards():
    """The real encoding of the ReCoRD fixture: a capped training batch holds at most the planner's
    count of candidates per example; an evaluation batch all of an example's candidates."""
    from peftbench.models.catalog import MODEL_CATALOG
    from peftbench.models.loading import load_tokenizer
    from peftbench.plan.memory import forwarded_sequences
    from tests.test_cloze_choice import CANDIDATES, CLOZE, slo_record

    task = slo_record(max_train_choices=2)
    training = _run_of(task, max_length=64).training
    data = CLOZE.prepare_data(task, load_tokenizer(MODEL_CATALOG["minilm-l6"]), training)
    train = data.collator([data.train[i] for i in range(len(data.train))])
    assert train["input_ids"].shape[1] == forwarded_sequences(task, training=True) == 2
    test = data.collator([data.test[i] for i in range(len(data.test))])
    assert test["input_ids"].shape[1] == max(len(c) for c in data.test[CANDIDATES]) == 4  # all of them


def test_a_likelihood_scorer_trains_on_the_gold_choice_and_evaluates_every_choice_with_lm_logits():
    from peftbench.plan.memory import evaluation_activation_bytes, training_activation_bytes
    from peftbench.tasks import TASK_CATALOG

    copa = TASK_CATALOG["copa"].model_copy(update={"scoring": "loglikelihood"})
    run = _run_of(copa, family="llama", batch_size=4, eval_batch_size=16)
    train_tokens, eval_tokens = 4 * 1 * 128, 16 * 2 * 128
    assert training_activation_bytes(run, LLAMA2_7B, mixed=True) == (
        train_tokens * 34 * 4096 * 32 + train_tokens * 32000 * 8
    )
    assert evaluation_activation_bytes(run, LLAMA2_7B, mixed=True) == (
        eval_tokens * 34 * 4096 + eval_tokens * 32000 * 4
    )


def test_an_evaluation_batch_larger_than_the_layers_make_up_for_sets_the_activations():
    from peftbench.plan.memory import ParameterCount, estimate_run
    from peftbench.tasks import TASK_CATALOG

    counts = {"params": ParameterCount(total=110_000_000, largest_layer=23_440_896), "trainable": 0}
    small = estimate_run(
        _run_of(TASK_CATALOG["slo_rte"], batch_size=4, eval_batch_size=8), BERT_BASE, 1, **counts
    )
    assert small.activations == 4 * 128 * 34 * 768 * 12 and not small.evaluation_bound
    large = estimate_run(
        _run_of(TASK_CATALOG["slo_rte"], batch_size=4, eval_batch_size=128), BERT_BASE, 1, **counts
    )
    assert large.activations == 128 * 128 * 34 * 768 and large.evaluation_bound  # 32 batches > 12 layers


def test_a_cloze_task_without_a_cap_gets_a_note_naming_the_setting(tmp_path, sweep_file):
    from typer.testing import CliRunner

    from peftbench.cli import app
    from peftbench.core.errors import ConfigError
    from peftbench.plan.sweep_plan import load_plan

    data = {
        "name": "record",
        "models": ["sloberta"],
        "tasks": ["slo_record", "copa"],
        "methods": {"lora": {"resources": {"gpus": 1}}},
    }
    plan = load_plan(sweep_file(data), "vega", tmp_path, check_memory=False, submitting=False)
    [note] = plan.notes
    assert note.key == "task_settings.slo_record.max_train_choices"
    assert "'slo_record' is scored on every candidate" in note.message and "assumes 32" in note.message
    out = CliRunner().invoke(
        app, ["sweep", str(sweep_file(data)), "--cluster", "vega", "--dry-run", "--runs-dir", str(tmp_path)]
    )
    assert out.exit_code == 0 and f"Note — {note}" in " ".join(out.stderr.split())

    capped = {**data, "task_settings": {"slo_record": {"max_train_choices": 8}}}
    plan = load_plan(sweep_file(capped), "vega", tmp_path, check_memory=False, submitting=False)
    assert plan.notes == [] and {
        r.task.max_train_choices for r in plan.runs if r.task.name == "slo_record"
    } == {8}
    with pytest.raises(
        ConfigError, match=r"task_settings\.copa\.max_train_choices: Task type 'multiple_choice'"
    ):
        load_plan(sweep_file({**data, "task_settings": {"copa": {"max_train_choices": 8}}}), "vega", tmp_path)


def test_choices_neither_in_columns_nor_in_labels_are_assumed_and_noted():
    from peftbench.plan.memory import ASSUMED_SEQUENCES, forwarded_sequences
    from peftbench.plan.schema import SweepSpec
    from peftbench.plan.sweep_plan import assumed_sequences
    from peftbench.tasks import TASK_CATALOG

    unstated = TASK_CATALOG["commonsense_qa"].model_copy(update={"labels": None})  # choices_column only
    assert forwarded_sequences(unstated, training=True) == ASSUMED_SEQUENCES
    [note] = assumed_sequences([_run_of(unstated)], SweepSpec.model_construct(tasks=[unstated]), "s.yaml")
    assert note.key == "tasks[0]" and "assumes 32" in note.message and "Give `labels`" in note.message
