"""Energy of a run (run/energy.py): the share arithmetic of packed runs, the NVML readers, a CPU run.

NVML cannot exist on this machine (no GPU, no driver): the readers are driven by FakeNvml below, a
stand-in with pynvml's function names and units (millijoules, SM utilisation samples per pid).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from peftbench.run.energy import (
    CPU_RUN,
    MEASURED_NOTE,
    EnergyCounter,
    EnergyMeter,
    Interval,
    PackedEnergySampler,
    share_energy,
)


def test_each_interval_is_shared_by_the_utilisation_of_the_runs_alive_in_it():
    shares = share_energy(
        [
            Interval(joules=3600.0, utilisation={1: 75.0, 2: 25.0}),  # 1 Wh: 0.75 / 0.25
            Interval(joules=7200.0, utilisation={2: 10.0}),  # 2 Wh, run 1 has ended: all to run 2
            Interval(joules=1800.0, utilisation={1: 0.0, 2: 0.0}),  # 0.5 Wh, nobody busy: equally
            Interval(joules=900.0, utilisation={}),  # between runs: nobody's
        ]
    )
    assert shares == pytest.approx({1: 0.75 + 0.25, 2: 0.25 + 2.0 + 0.25})


@dataclass
class Sample:  # pynvml's c_nvmlProcessUtilizationSample_t, the fields read here
    pid: int
    smUtil: int


class FakeNvml:
    """A stand-in for pynvml (no NVML here): per GPU an energy counter in mJ and utilisation samples."""

    def __init__(self, gpus: int):
        self.mj = [0] * gpus
        self.samples: list[list[Sample]] = [[] for _ in range(gpus)]

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
        return self.mj[handle]

    def nvmlDeviceGetProcessUtilization(self, handle: int, since_us: int) -> list[Sample]:
        taken, self.samples[handle] = self.samples[handle], []
        return taken


def test_a_meter_reads_the_counter_rise_over_the_gpus_of_the_run():
    nvml = FakeNvml(gpus=2)
    nvml.mj = [5_000_000, 9_000_000]  # counters since the driver loaded: only the rise counts
    meter = EnergyMeter(EnergyCounter.of_indices(nvml, [0, 1])).start()
    nvml.mj = [5_000_000 + 3_600_000, 9_000_000 + 1_800_000]  # 1 Wh on GPU 0, 0.5 Wh on GPU 1
    energy = meter.stop()
    assert energy.wh == pytest.approx(1.5) and energy.note == MEASURED_NOTE


def test_the_packed_sampler_shares_the_gpu_by_each_process_utilisation():
    nvml = FakeNvml(gpus=1)
    alive = {11, 12}
    sampler = PackedEnergySampler(EnergyCounter.of_indices(nvml, [0]), lambda: set(alive), every_s=3600)
    sampler.start()  # the thread waits an hour: every interval here is closed by hand
    nvml.mj[0] += 7_200_000  # 2 Wh while 11 keeps the GPU 3 times as busy as 12
    nvml.samples[0] = [Sample(11, 90), Sample(11, 60), Sample(12, 25)]
    sampler.sample()
    alive.discard(11)
    nvml.mj[0] += 3_600_000  # 1 Wh with 12 alone
    nvml.samples[0] = [Sample(12, 40)]
    shares = sampler.stop()  # closes the last interval
    assert shares == pytest.approx({11: 1.5, 12: 0.5 + 1.0})


def test_a_cpu_run_has_no_energy_and_says_why():
    energy = EnergyMeter.for_this_process(world_size=1).start().stop()
    assert energy.wh is None and energy.note == CPU_RUN
