"""Data-parallel training on torch.distributed: who this process is, and the few collectives it needs.

Launched with ``torchrun --nproc-per-node N``, every process trains the same network on its own
episodes; DistributedDataParallel averages the gradients, so N processes with local batches of B / N
take the same steps as one process on global batches of B. The backend is NCCL when CUDA is present and
gloo otherwise (CPU). Without torchrun's environment nothing is initialised and training is one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class Distributed:
    """This process's rank among ``world_size`` training processes (rank 0 writes the checkpoint)."""

    rank: int = 0
    world_size: int = 1
    # One process computing every rank's part of each step and averaging (gradient accumulation): the
    # single-process reference a torchrun run of ``world_size`` processes must reproduce.
    simulated: bool = False

    @property
    def enabled(self) -> bool:
        """Whether collectives run (torchrun ranks); a simulated world needs none."""
        return self.world_size > 1 and not self.simulated

    @property
    def processes(self) -> int:
        """How many processes take part in collectives (1 for a simulated world)."""
        return self.world_size if self.enabled else 1

    @property
    def data_rank(self) -> int | None:
        """Whose samples this process reads: its rank, or None for all of them (simulated)."""
        return None if self.simulated else self.rank

    @classmethod
    def simulate(cls, world_size: int) -> Distributed:
        return cls(rank=0, world_size=world_size, simulated=True)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_environment(cls) -> Distributed:
        """Join the process group torchrun describes (RANK, WORLD_SIZE, MASTER_ADDR, ...), once."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls()
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
        return cls(rank=dist.get_rank(), world_size=dist.get_world_size())

    def sum(self, values: np.ndarray | list[float]) -> np.ndarray:
        """Element-wise sum over the ranks (float64), e.g. loss totals and moment sums."""
        array = np.asarray(values, dtype=np.float64)
        if not self.enabled:
            return array
        tensor = torch.from_numpy(array.copy())
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.numpy()

    def min(self, value: int) -> int:
        if not self.enabled:
            return int(value)
        tensor = torch.tensor([int(value)], dtype=torch.int64)
        dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
        return int(tensor.item())

    def max(self, value: float) -> float:
        if not self.enabled:
            return float(value)
        tensor = torch.tensor([float(value)], dtype=torch.float64)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return float(tensor.item())

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def wrap(self, module: nn.Module, unused_parameters: bool = False) -> nn.Module:
        """DDP around ``module`` when distributed. ``unused_parameters``: a network some of whose
        parameters get no gradient in a step (DDP then walks the autograd graph every step to find
        them, so it is asked for only then; the networks here use every parameter)."""
        if not self.enabled:
            return module
        return DistributedDataParallel(module, find_unused_parameters=unused_parameters)


SINGLE_PROCESS = Distributed()


class LossModule(nn.Module):
    """Runs a loss closure inside ``forward``, so DDP sees the forward pass it synchronises gradients
    for; the closure uses ``model``'s parameters, which DDP wraps."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, loss_fn, idx: np.ndarray, generator: torch.Generator) -> torch.Tensor:
        return loss_fn(idx, generator, True)
