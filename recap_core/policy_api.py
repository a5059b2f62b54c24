"""What a collector needs from a policy: batched action chunks. Kept tiny so any policy plugs in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class ChunkPolicy(Protocol):
    """Maps observations (B, obs_dim) and their task prompts to action chunks (B, H, action_dim)."""

    @property
    def horizon(self) -> int: ...

    def act(self, observations: np.ndarray, prompts: Sequence[str]) -> np.ndarray: ...
