"""Every path of one run folder, built in one place."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from peftbench.core.spec import RunSpec


@dataclass(frozen=True)
class RunPaths:
    """Every path of one run folder: runs/<sweep>/<run_id>/."""

    root: Path

    @classmethod
    def of(cls, runs_dir: Path, spec: RunSpec) -> RunPaths:
        return cls(Path(runs_dir) / spec.sweep / spec.run_id)

    @property
    def spec(self) -> Path:
        return self.root / "spec.json"

    @property
    def result(self) -> Path:
        return self.root / "result.json"

    @property
    def log(self) -> Path:
        return self.root / "log.txt"

    @property
    def artifact(self) -> Path:
        """The saved adapter (or the whole model for full fine-tuning)."""
        return self.root / "artifact"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def parent_model(self) -> Path:
        """Incremental tuning: the parent run's model (adapters merged, head dropped) this run starts from."""
        return self.root / "parent_model"

    @property
    def test_predictions(self) -> Path:
        """One JSON line per test example: index, id, predicted label (peftbench.predictions)."""
        return self.root / "test_predictions.jsonl"

    @property
    def answers(self) -> Path:
        """Instruction tasks: each validation and test answer with what it answered (core/judging.py)."""
        return self.root / "answers.jsonl"

    @property
    def claim(self) -> Path:
        """Who trains the run now (host, pid, Slurm job): one job at a time (launch.claims)."""
        return self.root / ".claim"

    @property
    def validation_curve(self) -> Path:
        """Every evaluation during training: step, seconds since training began, validation metrics."""
        return self.root / "validation_curve.json"

    @property
    def progress(self) -> Path:
        """How far training is (core/progress.py), for the local launcher and `status --watch`."""
        return self.root / "progress.json"

    @property
    def winner(self) -> Path:
        """A run that trains its cell's winner (core/search.py): the run id it became when it started."""
        return self.root / "winner.json"

    @property
    def started_from(self) -> Path:
        """A child of a searched block (core/search.py): the run whose model it starts from, found when
        it first started."""
        return self.root / "parent.json"
