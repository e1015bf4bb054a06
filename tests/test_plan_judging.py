"""The plan says which step judges a sweep's answers, and refuses a judge offline nodes cannot reach."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from peftbench.core.errors import ConfigError
from peftbench.plan.sweep_plan import load_plan

REPO = Path(__file__).resolve().parents[1]
BELLE = REPO / "configs" / "sweeps" / "belle-instruct.yaml"
VEGA = REPO / "src" / "peftbench" / "plan" / "clusters" / "vega.yaml"


def belle_with_judge(tmp_path: Path, **judge: Any) -> Path:
    """The shipped BELLE sweep, its judge changed (YAML anchors resolved: every task gets it)."""
    data = yaml.safe_load(BELLE.read_text(encoding="utf-8"))
    for task in data["tasks"]:
        task["judge"] = task["judge"] | judge
    path = tmp_path / "belle-instruct.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def vega_with(tmp_path: Path, **changes: Any) -> Path:
    data = yaml.safe_load(VEGA.read_text(encoding="utf-8")) | changes
    path = tmp_path / "vega-here.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_an_inside_the_run_judge_is_refused_on_offline_nodes(tmp_path: Path):
    sweep = belle_with_judge(tmp_path, where="run")
    with pytest.raises(ConfigError) as err:
        load_plan(sweep, "vega", runs_dir=tmp_path / "runs", submitting=False)
    said = str(err.value)
    assert f"{sweep}: tasks.belle_0.6m.judge.where:" in said and "4 problems" in said  # one per task
    assert (
        "compute nodes of 'vega' are offline" in said
        and "'api.openai.com' is not one of its site_hosts" in said
    )


def test_a_judge_on_the_site_may_judge_inside_the_run(tmp_path: Path):
    sweep = belle_with_judge(tmp_path, where="run", url="http://judge-node:8000/v1", api_key_env=None)
    refused = vega_with(tmp_path)
    with pytest.raises(ConfigError):
        load_plan(sweep, str(refused), runs_dir=tmp_path / "runs", submitting=False)
    allowed = vega_with(tmp_path, site_hosts=["judge-node"])
    plan = load_plan(sweep, str(allowed), runs_dir=tmp_path / "runs", submitting=False)
    notes = [str(n) for n in plan.notes if "judge" in n.key]
    assert len(notes) == 4 and all(
        "asks its judge (gpt-3.5-turbo at http://judge-node:8000/v1) itself" in n for n in notes
    )


def test_the_plan_says_the_judge_step_judges_by_default(tmp_path: Path):
    plan = load_plan(BELLE, "vega", runs_dir=tmp_path / "runs", submitting=False)
    notes = [str(n) for n in plan.notes if n.key.endswith(".judge")]
    assert len(notes) == 4
    assert f"`peftbench judge {tmp_path / 'runs'}/belle-instruct` scores them with gpt-3.5-turbo" in notes[0]
    assert "(where: apart)" in notes[0]
