"""BitFit is refused, before anything runs, for families without bias terms, with what to use instead."""

from __future__ import annotations

import pytest

from peftbench.core.errors import ConfigError
from peftbench.plan.loading import load_sweep
from tests.method_training import tiny_llama


def test_bitfit_on_llama_is_refused_naming_file_key_model_and_alternatives(sweep_file, tiny_decoder):
    data = {
        "name": "bitfit-llama",
        "models": [tiny_llama(tiny_decoder).model_dump(), "minilm-l6"],
        "tasks": ["movie_sentiment"],
        "methods": {"biases": {"method": "bitfit"}, "lora": {}},
    }
    path = sweep_file(data)
    with pytest.raises(ConfigError) as info:
        load_sweep(path)
    [problem] = [str(p) for p in info.value.problems]
    assert problem.startswith(
        f"{path}: methods.biases: Method 'bitfit' cannot train model 'tiny-llama' (family llama)"
    )
    assert "no bias terms" in problem and "use 'none'" in problem and "'ia3' or 'lora'" in problem
