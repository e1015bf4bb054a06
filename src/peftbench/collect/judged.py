"""The judge's scores of each run, read from beside its result: which judge, and whether it is done.

Runs judged apart from training (core/judging.py) hold no judge metric in result.json; their scores
are in `judged/<judge key>/`. Each run's row gets, for the judge `collect` is told to use (the
sweep's own, else `--judge`): `judge` (who: model @ host, prompt hash), `judged` (`judged`, `in the
run`, or `not judged (k of n answers scored)`), the judge metrics per split once every answer is
scored (`validation_judge`, `test_judge/<category>`, ...) and the tokens sent and received. A run
not yet judged keeps no judge metric: it is never shown as a zero.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from peftbench.core.judge_settings import JudgeSettings
from peftbench.core.judging import JudgeIdentity, judged_run
from peftbench.core.spec import RunSpec

JUDGED = "judged"
IN_THE_RUN = "in the run"


def judged_columns(run_dir: Path, spec: RunSpec, judge: JudgeSettings | None = None) -> dict[str, Any]:
    """The judge columns of one run's row; none for a task without a judge (and no `judge` given)."""
    settings = judge or spec.task.judge
    if settings is None or spec.task.type != "instruction":
        return {}
    identity = JudgeIdentity.of(settings)
    if judge is None and settings.where == "run":
        return {"judge": identity.label, "judged": IN_THE_RUN}
    verdict = judged_run(run_dir, identity, settings.category_groups)
    row: dict[str, Any] = {
        "judge": identity.label,
        "judge_tokens_sent": verdict.tokens_sent,
        "judge_tokens_received": verdict.tokens_received,
    }
    if not verdict.complete:
        return row | {"judged": f"not judged ({verdict.scored} of {verdict.answers} answers scored)"}
    for split, metrics in verdict.metrics.items():
        row.update({f"{split}_{name}": value for name, value in metrics.items()})
    return row | {"judged": JUDGED}


def not_judged_reason(runs: Any) -> str | None:
    """Why a cell's runs have no judge score to choose on: its judge has not scored them all yet."""
    if "judged" not in runs:
        return None
    waiting = runs[runs["judged"].astype(str).str.startswith("not judged")]
    if not len(waiting):
        return None
    judge = waiting["judge"].iloc[0]
    return f"not yet judged by {judge} ({waiting['judged'].iloc[0]}; `peftbench judge` scores them)"
