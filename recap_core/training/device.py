"""Where training runs and at what precision: one rule for every trainer and benchmark.

The pipeline trains on the CPU in float32 (checkpoints are content-addressed and bitwise reproducible
per machine, which a GPU's non-deterministic kernels would undo), so ``CPU`` is every trainer's default.
Benchmarks ask for ``device="auto"``: the same command then measures a CUDA machine unchanged.

Mixed precision "where it is safe" means bfloat16 autocast: it keeps float32's exponent range, so no
loss scaling is needed and a flow-matching or cross-entropy loss cannot underflow the way float16's
can. "auto" takes it on a CUDA device that supports it and stays float32 on a CPU, where bfloat16 is
mostly emulated and slower; float16 (which would need a gradient scaler) is not offered.
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterator
from dataclasses import dataclass

import torch

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class Placement:
    """A device and whether the forward pass runs under bfloat16 autocast."""

    device: torch.device
    bf16: bool = False

    @property
    def precision(self) -> str:
        return "bf16" if self.bf16 else "fp32"

    def put(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` on this device (the same tensor when it is already there: no copy on a CPU)."""
        return tensor if tensor.device == self.device else tensor.to(self.device, non_blocking=True)

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """bfloat16 autocast around a forward pass when asked for, nothing otherwise."""
        if not self.bf16:
            yield
            return
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16):
            yield

    def describe(self) -> dict[str, str]:
        """What a benchmark reports: the device, its name and the precision."""
        if self.device.type == "cuda":
            name = torch.cuda.get_device_name(self.device)
        else:
            name = platform.processor() or platform.machine()
        return {"device": str(self.device), "device_name": name, "precision": self.precision}


CPU = Placement(torch.device("cpu"))


def resolve_placement(device: str = "auto", precision: str = "auto") -> Placement:
    """The placement ``device`` and ``precision`` name. ``device``: "auto" (CUDA when present, else the
    CPU), "cpu", "cuda" or "cuda:N"; under torchrun "auto" and "cuda" mean this rank's GPU (LOCAL_RANK).
    ``precision``: "auto", "fp32" or "bf16". Asking for what this machine cannot do is refused by name."""
    kind = device.split(":", 1)[0]
    if kind not in DEVICES or (kind != "cuda" and ":" in device):
        raise ValueError(f"device must be one of {DEVICES} or 'cuda:N', got {device!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA device on this machine")
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cuda":
        chosen = torch.device(device if ":" in device else f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}")
    else:
        chosen = torch.device("cpu")
    if precision == "auto":
        return Placement(chosen, bf16=chosen.type == "cuda" and torch.cuda.is_bf16_supported())
    if precision == "bf16" and chosen.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(f"precision 'bf16' asked for, but {torch.cuda.get_device_name(chosen)} lacks it")
    return Placement(chosen, bf16=precision == "bf16")
