"""Data-parallel training on torch.distributed: who this process is, and the few collectives it needs.

Launched with ``torchrun --nproc-per-node N``, every process trains the same network on its own
episodes; DistributedDataParallel averages the gradients, so N processes with local batches of B / N
take the same steps as one process on global batches of B. The backend follows the device the ranks
train on: NCCL for a GPU, gloo for the CPU (the pipeline's trainers, even on a machine with a GPU).
Without torchrun's environment nothing is initialised and training is one process.
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
    # where the collectives' tensors live: NCCL reduces only GPU tensors
    device: str = "cpu"

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
    def from_environment(cls, device: torch.device | str = "cpu") -> Distributed:
        """Join the process group torchrun describes (RANK, WORLD_SIZE, MASTER_ADDR, ...), once, for
        ranks that train on ``device``."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls()
        device = torch.device(device)
        if not dist.is_initialized():
            if device.type == "cuda":
                torch.cuda.set_device(device)
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        return cls(rank=dist.get_rank(), world_size=dist.get_world_size(), device=str(device))

    def sum(self, values: np.ndarray | list[float]) -> np.ndarray:
        """Element-wise sum over the ranks (float64), e.g. loss totals and moment sums."""
        array = np.asarray(values, dtype=np.float64)
        if not self.enabled:
            return array
        tensor = torch.from_numpy(array.copy()).to(self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.cpu().numpy()

    def min(self, value: int) -> int:
        if not self.enabled:
            return int(value)
        tensor = torch.tensor([int(value)], dtype=torch.int64, device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
        return int(tensor.item())

    def max(self, value: float) -> float:
        if not self.enabled:
            return float(value)
        tensor = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return float(tensor.item())

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def wrap(
        self, module: nn.Module, unused_parameters: bool = False, device: torch.device | None = None
    ) -> nn.Module:
        """DDP around ``module`` (already on ``device``) when distributed. ``unused_parameters``: a
        network some of whose parameters get no gradient in a step (DDP then walks the autograd graph
        every step to find them, so it is asked for only then; the networks here use every parameter)."""
        if not self.enabled:
            return module
        device_ids = [device] if device is not None and device.type == "cuda" else None
        return DistributedDataParallel(
            module, device_ids=device_ids, find_unused_parameters=unused_parameters
        )


SINGLE_PROCESS = Distributed()


class LossModule(nn.Module):
    """Runs a loss closure inside ``forward``, so DDP sees the forward pass it synchronises gradients
    for; the closure uses ``model``'s parameters, which DDP wraps."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, loss_fn, idx: np.ndarray, generator: torch.Generator) -> torch.Tensor:
        return loss_fn(idx, generator, True)
