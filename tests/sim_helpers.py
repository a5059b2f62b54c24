"""Shared pieces for the robot tests: deterministic chunk policies that implement ChunkPolicy for real."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class ConstantChunkPolicy:
    """Always commands the same action: a policy that stalls (zero) or drifts (non-zero).

    Records every call so tests can check batching and chunk execution.
    """

    def __init__(self, action: Sequence[float], horizon: int = 5) -> None:
        self.action = np.asarray(action, dtype=np.float32)
        self._horizon = horizon
        self.batch_sizes: list[int] = []

    @property
    def horizon(self) -> int:
        return self._horizon

    def act(self, observations: np.ndarray, prompts: Sequence[str]) -> np.ndarray:
        assert len(prompts) == len(observations)
        self.batch_sizes.append(len(observations))
        return np.broadcast_to(self.action, (len(observations), self._horizon, len(self.action))).copy()


class PointMassPDPolicy:
    """Open-loop PD chunks for the point mass: a competent policy (chunk = expert action repeated)."""

    def __init__(self, horizon: int = 4) -> None:
        self._horizon = horizon

    @property
    def horizon(self) -> int:
        return self._horizon

    def act(self, observations: np.ndarray, prompts: Sequence[str]) -> np.ndarray:
        action = np.clip(
            3.0 * (observations[:, 4:6] - observations[:, 0:2]) - 1.5 * observations[:, 2:4], -1, 1
        )
        return np.repeat(action[:, None, :], self._horizon, axis=1).astype(np.float32)
