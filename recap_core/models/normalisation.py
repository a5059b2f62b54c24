"""Per-feature standardisation whose statistics are buffers, so they travel inside model.safetensors."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class Normaliser(nn.Module):
    """(x - mean) / std with std floored, so constant features (a fixed goal, a padded slot) stay finite."""

    def __init__(self, dim: int, min_std: float = 1e-3) -> None:
        super().__init__()
        self.min_std = min_std
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, data: np.ndarray) -> Normaliser:
        data = np.asarray(data, dtype=np.float64).reshape(-1, self.mean.shape[0])
        if not np.all(np.isfinite(data)):
            raise ValueError("cannot fit normalisation statistics: data contains NaN or inf")
        self.mean.copy_(torch.as_tensor(data.mean(axis=0), dtype=torch.float32))
        self.std.copy_(torch.as_tensor(np.maximum(data.std(axis=0), self.min_std), dtype=torch.float32))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean
