"""GPU energy of a run, from NVML's total-energy counter (A100, H100 and later have one).

`nvmlDeviceGetTotalEnergyConsumption` counts millijoules since the driver loaded, per GPU: a run's
energy is the counter's rise over the run, summed over the GPUs the process uses, then summed over
ranks by the caller. Where there is no counter (a CPU run, no nvidia-ml-py, a GPU without one) the
energy is None and the note says why; nothing is ever guessed from power limits.

A packed array task runs several runs on one GPU at once, so the counter's rise is shared: each
interval's energy goes to the runs alive in it in proportion to the GPU (SM) utilisation of their
processes, as NVML samples it (`nvmlDeviceGetProcessUtilization`); in an interval where none of
them shows any utilisation, equally. That is a time-weighted utilisation share: an estimate, not a
measurement (memory traffic and idle power are not per process), and the note says so.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

J_PER_WH = 3600.0
CPU_RUN = "no NVML: CPU run"
SHARE_NOTE = (
    "estimate: the GPU's NVML energy shared by time-weighted GPU utilisation of each packed run's process"
)
MEASURED_NOTE = "NVML total-energy counter, summed over GPUs and ranks"
PACKED_ENV = "PEFTBENCH_PACKED_TASK"  # set in a packed task's run processes: the task shares the energy
PACKED_NOTE = "packed run: its packed task sets its share of the GPU's energy"


@dataclass(frozen=True)
class Energy:
    """A run's energy in Wh, or None with the reason."""

    wh: float | None
    note: str


def load_nvml() -> tuple[Any, str | None]:
    """(the pynvml module, initialised) or (None, why not)."""
    try:
        import pynvml
    except ImportError:
        return None, "no NVML: nvidia-ml-py is not installed"
    try:
        pynvml.nvmlInit()
    except Exception as err:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return None, f"no NVML: {err}"
    return pynvml, None


def nvml_indices(cuda_devices: Iterable[int]) -> list[int]:
    """NVML's index of each CUDA device (NVML ignores CUDA_VISIBLE_DEVICES; torch knows the mapping)."""
    import torch

    out = []
    for device in cuda_devices:
        try:
            out.append(int(torch.cuda._get_nvml_device_index(device)))
        except Exception:  # an older torch: assume the identity mapping
            out.append(int(device))
    return out


class EnergyCounter:
    """Reads the total-energy counters (millijoules) of some GPUs through `nvml` (pynvml or a stand-in)."""

    def __init__(self, nvml: Any, handles: list[Any]):
        self.nvml = nvml
        self.handles = handles

    @classmethod
    def of_indices(cls, nvml: Any, indices: Iterable[int]) -> EnergyCounter:
        return cls(nvml, [nvml.nvmlDeviceGetHandleByIndex(i) for i in indices])

    @classmethod
    def of_visible_gpus(cls, nvml: Any) -> EnergyCounter:
        """The GPUs CUDA_VISIBLE_DEVICES names (indices or UUIDs), else all; without touching CUDA,
        so that a packed task can still fork its run processes afterwards."""
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is None:
            return cls.of_indices(nvml, range(nvml.nvmlDeviceGetCount()))
        names = [v.strip() for v in visible.split(",") if v.strip()]
        return cls(nvml, [_handle_of(nvml, name) for name in names])

    def total_mj(self) -> int:
        """Sum of the counters; raises when a GPU has none (NVMLError_NotSupported)."""
        return sum(int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(h)) for h in self.handles)

    def utilisation(self, since_us: int) -> dict[int, list[int]]:
        """pid -> SM utilisation samples (%) taken after `since_us`, over these GPUs."""
        out: dict[int, list[int]] = {}
        for handle in self.handles:
            try:
                samples = self.nvml.nvmlDeviceGetProcessUtilization(handle, since_us)
            except Exception:  # NVML_ERROR_NOT_FOUND: no process sampled since then
                continue
            for sample in samples:
                out.setdefault(int(sample.pid), []).append(int(sample.smUtil))
        return out


def _handle_of(nvml: Any, name: str) -> Any:
    """The NVML handle of a GPU as CUDA_VISIBLE_DEVICES names it: an index or a UUID."""
    if name.isdigit():
        return nvml.nvmlDeviceGetHandleByIndex(int(name))
    return nvml.nvmlDeviceGetHandleByUUID(name)


class EnergyMeter:
    """The counter's rise between `start` and `stop`, for one process's own GPUs."""

    def __init__(self, counter: EnergyCounter | None, why_not: str = ""):
        self.counter, self.why_not = counter, why_not
        self._first: int | None = None

    @classmethod
    def for_this_process(cls, world_size: int) -> EnergyMeter:
        """This process's GPUs: its own (cuda:LOCAL_RANK) in a multi-process run, else all it sees."""
        import torch

        if not torch.cuda.is_available():
            return cls(None, CPU_RUN)
        nvml, why = load_nvml()
        if nvml is None:
            return cls(None, why or "no NVML")
        local = [int(os.environ.get("LOCAL_RANK", 0))] if world_size > 1 else range(torch.cuda.device_count())
        return cls(EnergyCounter.of_indices(nvml, nvml_indices(local)))

    def start(self) -> EnergyMeter:
        if self.counter is not None:
            try:
                self._first = self.counter.total_mj()
            except Exception as err:  # NVMLError_NotSupported: a GPU without the counter
                self.counter, self.why_not = None, f"no NVML energy counter on this GPU: {err}"
        return self

    def stop(self) -> Energy:
        if self.counter is None or self._first is None:
            return Energy(None, self.why_not or "no NVML")
        return Energy((self.counter.total_mj() - self._first) / 1000 / J_PER_WH, MEASURED_NOTE)


@dataclass(frozen=True)
class Interval:
    """One sampling interval of a packed task: the GPUs' energy in it, and who used them how much."""

    joules: float
    utilisation: dict[int, float]  # pid -> mean SM utilisation (%) of each run process alive in it


def share_energy(intervals: Iterable[Interval]) -> dict[int, float]:
    """pid -> Wh: each interval's joules split by the utilisation of the processes alive in it
    (equally when none of them shows any). An interval with no run alive is nobody's."""
    shares: dict[int, float] = {}
    for interval in intervals:
        for pid, part in _parts(interval.utilisation).items():
            shares[pid] = shares.get(pid, 0.0) + interval.joules * part / J_PER_WH
    return shares


def _parts(alive: dict[int, float]) -> dict[int, float]:
    """pid -> its part (0 to 1) of an interval: its share of the utilisation, equal parts when none."""
    total = sum(alive.values())
    if total > 0:
        return {pid: used / total for pid, used in alive.items()}
    return {pid: 1 / len(alive) for pid in alive}


@dataclass
class PackedEnergySampler:
    """Samples a packed task's GPUs every `every_s` seconds in a thread; `shares()` at the end.

    `alive()` names the run processes alive now (the pool's children): only they share an interval.
    """

    counter: EnergyCounter
    alive: Callable[[], set[int]]
    every_s: float = 2.0
    clock: Callable[[], float] = time.time
    intervals: list[Interval] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> PackedEnergySampler:
        self._last_mj = self.counter.total_mj()
        self._last_us = int(self.clock() * 1e6)
        self._thread = threading.Thread(target=self._loop, name="energy sampler", daemon=True)
        self._thread.start()
        return self

    def sample(self) -> None:
        """Close one interval: the counter's rise, and the mean utilisation of each live run process."""
        now_mj, now_us = self.counter.total_mj(), int(self.clock() * 1e6)
        seen = self.counter.utilisation(self._last_us)
        alive = self.alive()
        used = {pid: (sum(seen[pid]) / len(seen[pid]) if seen.get(pid) else 0.0) for pid in alive}
        self.intervals.append(Interval((now_mj - self._last_mj) / 1000, used))
        self._last_mj, self._last_us = now_mj, now_us

    def stop(self) -> dict[int, float]:
        """Close the last interval and share; nothing when it never started (no run was forked)."""
        if self._thread is None:
            return {}
        self._stop.set()
        self._thread.join()
        with contextlib.suppress(Exception):
            self.sample()
        return share_energy(self.intervals)

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            with contextlib.suppress(Exception):  # a failed read loses an interval, never the task
                self.sample()
