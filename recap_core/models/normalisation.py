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

    @torch.no_grad()
    def fit_moments(self, count: float, total: np.ndarray, total_squares: np.ndarray) -> Normaliser:
        """The same statistics from sums over the data (streamed shards, summed over ranks)."""
        if count <= 0:
            raise ValueError("cannot fit normalisation statistics on no data")
        mean = np.asarray(total, dtype=np.float64) / count
        variance = np.maximum(np.asarray(total_squares, dtype=np.float64) / count - mean**2, 0.0)
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(variance))):
            raise ValueError("cannot fit normalisation statistics: data contains NaN or inf")
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(np.maximum(np.sqrt(variance), self.min_std), dtype=torch.float32))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean
