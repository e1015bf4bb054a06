"""The rung check of successive halving, inside a run (the rule and the records: core/search.py).

At each rung step (`SearchSettings.rung_steps` of the Trainer's max_steps) the callback asks for an
evaluation; when it comes, the run records its validation score in its own file of the sweep
folder, reads the scores of its cell at that rung, and either goes on or raises `Halted`, which
`run_one` turns into a result with status `halted`. The record holds the decision: a requeued run
that resumes from a checkpoint before a rung it passed finds it there and does not decide again.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from peftbench.core.search import (
    Halted,
    read_rung_record,
    rung_folder,
    rung_record_path,
    rung_scores,
    survives,
    write_rung_record,
)
from peftbench.core.search_settings import SearchSettings
from peftbench.core.spec import RunSpec


class RungCheck(TrainerCallback):
    """Evaluates at each rung and halts the run when it leaves its cell's top 1/eta (module docstring)."""

    def __init__(self, spec: RunSpec, search: SearchSettings, sweep_dir: Path, metric: str, higher: bool):
        self.spec, self.search, self.sweep_dir = spec, search, Path(sweep_dir)
        self.metric, self.higher = metric, higher
        self.steps: dict[int, int] = {}

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.steps = self.search.rung_steps(int(state.max_steps))

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step in self.steps and self._recorded(self.steps[state.global_step]) is None:
            control.should_evaluate = True

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None, **kw):
        rung = self.steps.get(int(state.global_step))
        score = (metrics or {}).get(f"eval_{self.metric}")  # as the Trainer logs it
        if rung is None or score is None:  # every rank decides (they see the same gathered score)
            return
        step = int(state.global_step)
        decision = self._recorded(rung) or self._decide(rung, step, float(score), state.max_steps)
        if decision == "halt":
            if not self.spec.training.keep_checkpoints:  # a halted run is final: nothing resumes it
                shutil.rmtree(args.output_dir, ignore_errors=True)
            raise Halted(self._why(rung, score))

    def _recorded(self, rung: int) -> str | None:
        """The decision this run already took at `rung` (a resumed run), or None."""
        record = read_rung_record(rung_record_path(self.sweep_dir, self.spec, rung))
        return None if record is None else record.get("decision")

    def _decide(self, rung: int, step: int, score: float, max_steps: int) -> str:
        """Record the score, read the cell's scores at this rung, record the decision; return it."""
        path = rung_record_path(self.sweep_dir, self.spec, rung)
        record = {
            "run_id": self.spec.run_id,
            "rung": rung,
            "step": step,
            "max_steps": int(max_steps),
            "budget": step / max_steps,
            "metric": self.metric,
            "score": score,
            "seed": self.spec.seed,
            "point": {**self.spec.params, "learning_rate": self.spec.training.learning_rate},
            "decision": None,
        }
        write_rung_record(path, record)  # first the score, so that runs deciding meanwhile see it
        scores = rung_scores(rung_folder(self.sweep_dir, self.spec, rung))
        scores[self.spec.run_id] = score
        decision = (
            "continue" if survives(score, list(scores.values()), self.search.eta, self.higher) else "halt"
        )
        write_rung_record(path, {**record, "decision": decision, "compared_with": len(scores)})
        logging.getLogger("peftbench").info(
            "rung %d (step %d of %d): %s %.4f among %d run(s): %s",
            rung, step, max_steps, self.metric, score, len(scores), decision,
        )  # fmt: skip
        return decision

    def _why(self, rung: int, score: float) -> str:
        record = read_rung_record(rung_record_path(self.sweep_dir, self.spec, rung)) or {}
        return (
            f"halted at rung {rung} (step {record.get('step')} of {record.get('max_steps')}): validation "
            f"{self.metric} {score:.4f} is not in the top 1/{self.search.eta} of the "
            f"{record.get('compared_with', '?')} score(s) of its cell at that rung"
        )
