"""What successive halving did per searched cell: its protocol, its runs, what it cost against the
full grid (core/search.py runs the halving; this only reads the merged results).

The cost is measured, not estimated: the wall hours of every run of the cell (halted ones included,
model loading and evaluations included) against what the full grid would have cost, every point ×
every seed at the mean wall time of the cell's runs that trained their full budget. Hours are the
runs' own wall-clock hours (× GPUs where results hold GPU-hours).
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from peftbench.core.search_settings import SearchSettings

SEARCH_COLUMNS = ("model", "method", "task")


def search_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per cell with searched runs: protocol, points, seeds, runs, halted, hours spent and
    the full grid's hours; empty when no run was searched."""
    if not len(frame) or "searched" not in frame or not frame["searched"].fillna(False).astype(bool).any():
        return pd.DataFrame()
    rows = []
    for key, runs in frame.groupby(list(SEARCH_COLUMNS), sort=False):
        searched = runs[runs["searched"].fillna(False).astype(bool)]
        if searched.empty:
            continue
        rows.append(dict(zip(SEARCH_COLUMNS, key, strict=True)) | _cell_cost(runs, searched))
    return pd.DataFrame(rows)


def _cell_cost(runs: pd.DataFrame, searched: pd.DataFrame) -> dict[str, Any]:
    settings = SearchSettings.model_validate(json.loads(searched["search"].dropna().iloc[0]))
    points = searched.groupby(["params", "training"], sort=False).ngroups
    seeds = int(runs["seed"].nunique())
    hours = _hours(runs)
    full_budget = hours[runs["status"] == "success"]
    per_run = float(full_budget.mean()) if len(full_budget) else float("nan")
    spent = float(hours.sum())
    full_grid = per_run * points * seeds
    return {
        "protocol": settings.protocol(int(searched["seed"].min())),
        "points": points,
        "seeds": seeds,
        "runs": len(runs),
        "halted": int((runs["status"] == "halted").sum()),
        "hours": spent,
        "full_grid_hours": full_grid,
        "share": spent / full_grid if full_grid else float("nan"),
    }


def _hours(runs: pd.DataFrame) -> pd.Series:
    """Each run's hours: its GPU-hours where it has them, else its wall hours."""
    wall = runs["wall_seconds"].astype(float).fillna(0.0) / 3600
    if "gpu_hours" not in runs:
        return wall
    gpu = runs["gpu_hours"].astype(float).fillna(0.0)
    return gpu.where(gpu > 0, wall)


def protocol_lines(cells: pd.DataFrame) -> list[str]:
    """One sentence per protocol in use, naming its cells' count and what they cost against the full grid."""
    if cells.empty:
        return []
    lines = []
    for protocol, group in cells.groupby("protocol", sort=False):
        spent, full = float(group["hours"].sum()), float(group["full_grid_hours"].sum())
        lines.append(
            f"{len(group)} cell(s) searched by {protocol}: {int(group['halted'].sum())} run(s) halted; "
            f"{spent:.3g} h spent against {full:.3g} h for the full grid ({spent / full:.0%}), from measured "
            "run times. Each cell's point is chosen only among runs that trained their full budget."
        )
    return lines
