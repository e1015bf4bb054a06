"""Named benchmarks: each a TaskSpec (source, columns, labels, metric). Adding one is a few lines."""

from __future__ import annotations

from peftbench.config import DataSource, TaskSpec

NLI3 = ["entailment", "neutral", "contradiction"]
GLUE_DEV_AS_TEST = {"train": "train[:-1000]", "validation": "train[-1000:]", "test": "validation"}

TASK_CATALOG: dict[str, TaskSpec] = {
    t.name: t
    for t in [
        # Bundled (real data shipped inside peftbench; see tasks/data/*/README.md for sources).
        TaskSpec(
            name="movie_sentiment",
            source=DataSource(bundled="movie_sentiment"),
            text_columns=["sentence"],
            labels=["negative", "positive"],
        ),
        TaskSpec(
            name="presupposition_nli",
            source=DataSource(bundled="presupposition_nli"),
            text_columns=["premise", "hypothesis"],
            labels=NLI3,
        ),
        TaskSpec(
            name="epistemic_nli",
            source=DataSource(bundled="epistemic_nli"),
            text_columns=["premise", "hypothesis"],
            labels=["entailment", "non-entailment"],
        ),
        # GLUE on the hub: test labels are hidden, so dev is the test set and validation is cut
        # from the end of train.
        TaskSpec(
            name="sst2",
            source=DataSource(hub="nyu-mll/glue", config="sst2"),
            splits=GLUE_DEV_AS_TEST,
            text_columns=["sentence"],
            labels=["negative", "positive"],
        ),
        TaskSpec(
            name="cola",
            source=DataSource(hub="nyu-mll/glue", config="cola"),
            splits=GLUE_DEV_AS_TEST,
            text_columns=["sentence"],
            labels=["unacceptable", "acceptable"],
            metric="mcc",
        ),
        TaskSpec(
            name="rte",
            source=DataSource(hub="nyu-mll/glue", config="rte"),
            splits={"train": "train[:-250]", "validation": "train[-250:]", "test": "validation"},
            text_columns=["sentence1", "sentence2"],
            labels=["entailment", "not_entailment"],
        ),
    ]
}
