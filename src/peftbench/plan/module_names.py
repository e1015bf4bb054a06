"""Module names a method block lists (LoRA's `target_modules`, IA3's `feedforward_modules`), checked
against the model's own before anything runs.

peft matches each listed name against every module of the model: its full name, or its last dotted
parts (`q_proj` matches `model.layers.0.self_attn.q_proj`). A name that matches no module stops the run
when peft wraps the model, after the job has waited in the queue and the weights have loaded. The plan
builds each model once on torch's meta device from its planning config (`models.shapes`: its folder,
the HF cache or the shipped table; no weights, no network) and refuses every name no module has,
offering the layer names the model does have. Presets ('all-linear', 'attention') are not names and
pass. A model whose config is not available here cannot be checked: a note says so; nothing is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from peftbench.core.errors import Problem
from peftbench.core.search import cell_id, parent_cell_id
from peftbench.core.spec import RUN_SOURCE, ModelRef, RunSpec, parent_run_id

MODULE_LIST_SUFFIX = "_modules"  # a method parameter that lists modules: target_modules, feedforward_modules


@dataclass(frozen=True)
class ModuleNames:
    """What a listed name may be, for one model."""

    matched: frozenset[str]  # every module's full name and each of its dotted endings (what peft matches)
    layers: tuple[str, ...]  # the last part of each module that holds weights of its own, sorted


@dataclass(frozen=True)
class ModuleCheck:
    problems: list[Problem] = field(default_factory=list)  # names no module of the model has
    notes: list[Problem] = field(default_factory=list)  # models whose module names are not known here


def listed_modules(run: RunSpec) -> dict[str, list[str]]:
    """The run's method parameters that list module names (a preset such as 'all-linear' is a string)."""
    return {k: v for k, v in run.params.items() if k.endswith(MODULE_LIST_SUFFIX) and isinstance(v, list)}


def module_names(model: Any) -> ModuleNames:
    """The names peft can match in a torch module, and the names of its layers to offer."""
    matched, layers = set(), set()
    for full, module in model.named_modules():
        if not full:  # the model itself
            continue
        parts = full.split(".")
        matched.update(".".join(parts[i:]) for i in range(len(parts)))
        if next(module.parameters(recurse=False), None) is not None and not parts[-1].isdigit():
            layers.add(parts[-1])
    return ModuleNames(frozenset(matched), tuple(sorted(layers)))


def model_module_names(ref: ModelRef) -> ModuleNames | str:
    """The module names of `ref` built on the meta device, or why they are not known here (a phrase)."""
    from peftbench.models.shapes import planning_config
    from peftbench.plan.memory import meta_model

    config, origin = planning_config(ref)
    if origin == "run":
        return "it starts from another run's model, which exists only once that run has trained"
    if config is None:
        return "its config is neither in its folder, the HF cache nor peftbench's table of known models"
    try:
        return module_names(meta_model(config))
    except Exception as err:  # an architecture this transformers cannot build: not the sweep's fault
        return f"transformers cannot build it from its config ({type(err).__name__}: {err})"


def module_name_check(runs: list[RunSpec], file: str) -> ModuleCheck:
    """Each listed module name no module of its run's model has (once per block, model, parameter and
    name), and a note for each block and model whose names cannot be checked here. Each model is
    built once, and only if a run lists module names for it."""
    problems: list[Problem] = []
    notes: list[Problem] = []
    known: dict[tuple[str, str | None], ModuleNames | str] = {}
    seen: set[tuple[Any, ...]] = set()
    base = _base_models(runs)
    for run in runs:
        lists = listed_modules(run)
        if not lists:
            continue
        ref = base.get(run.run_id, run.model) if base else run.model
        model = (ref.source, ref.gguf_file)
        point = (run.label, *model, repr(sorted(lists.items())))
        if point in seen:
            continue
        seen.add(point)
        if model not in known:
            known[model] = model_module_names(ref)
        names = known[model]
        if isinstance(names, str):
            notes.append(_unchecked(run.label, ref, names, file))
            continue
        for key, listed in lists.items():
            problems.extend(_unknown(f"methods.{run.label}.{key}", ref, listed, names, file))
    return ModuleCheck(list(dict.fromkeys(problems)), list(dict.fromkeys(notes)))


def _unknown(key: str, ref: ModelRef, listed: list[str], names: ModuleNames, file: str) -> list[Problem]:
    """A problem for each listed name that matches no module of the model."""
    return [
        Problem(
            file,
            key,
            f"No module of {ref.name!r} is named {name!r} or ends in '.{name}': peft would stop the run as "
            "it wraps the model.",
            name,
            names.layers,
        )
        for name in listed
        if name not in names.matched
    ]


def _unchecked(label: str, ref: ModelRef, why: str, file: str) -> Problem:
    """The note for a block whose model's module names are not known here."""
    hub = not ref.source.startswith(RUN_SOURCE)
    fetch = f" (`peftbench fetch {file}` caches a hub model's config)" if hub else ""
    return Problem(
        file,
        f"methods.{label}",
        f"The module names this block lists could not be checked against {ref.name!r}: {why}{fetch}. "
        "peft checks them when the run starts.",
    )


def _base_models(runs: list[RunSpec]) -> dict[str, ModelRef]:
    """run id -> the model whose modules a child of incremental tuning has: its first ancestor's (a
    merged model keeps its base's modules). Empty when no run starts from another."""
    if not any(run.model.source.startswith(RUN_SOURCE) for run in runs if listed_modules(run)):
        return {}
    by_id = {run.run_id: run for run in runs}
    cells = {cell_id(run): run for run in runs if run.search is not None}
    base = {}
    for run_id, run in by_id.items():
        first: RunSpec | None = run
        while first is not None:
            base[run_id] = first.model
            first = _above(first, by_id, cells)
    return base


def _above(run: RunSpec, by_id: dict[str, RunSpec], cells: dict[str, RunSpec]) -> RunSpec | None:
    """The run `run` starts from among these; for a child of a searched block, any run of that cell
    (they share one base model). None for a run that starts from none of them."""
    cell = parent_cell_id(run)
    return cells.get(cell) if cell is not None else by_id.get(parent_run_id(run) or "")
