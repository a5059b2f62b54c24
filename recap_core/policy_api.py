"""What a collector needs from a policy: batched action chunks. Kept tiny so any policy plugs in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class ChunkPolicy(Protocol):
    """Maps observations (B, obs_dim) and their task prompts to action chunks (B, H, action_dim).

    A policy that reads cameras also has ``vision`` (a ``recap_core.models.vision.VisionConfig`` naming
    its cameras and frame size) and takes ``act(observations, prompts, images=...)`` with the current
    uint8 frames (B, H, W, 3) of each camera; rollouts then render and pass them.
    """

    @property
    def horizon(self) -> int: ...

    def act(self, observations: np.ndarray, prompts: Sequence[str]) -> np.ndarray: ...
