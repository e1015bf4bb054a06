"""How many CPU threads torch uses in this process: the launcher says how many CPUs the run has.

Left alone, torch starts a thread per core of the node whatever the allocation; a run sharing a
node (with other jobs, or with the runs of its packed task) would then fight over its CPUs.
"""

from __future__ import annotations


def use_cpu_threads(count: int) -> None:
    """torch's intra-op threads for this process (the CPUs the launcher gave the run)."""
    import torch

    torch.set_num_threads(count)
