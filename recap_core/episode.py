"""The in-memory episode: what collectors and importers produce and what the episode store ingests.

One shared type keeps every producer (simulated robot, LeRobot import, a real fleet's uploader) and the
store agreeing on the exact same fields, so an episode from simulation looks like one from a robot.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import numpy as np

EpisodeKind = Literal["demo", "autonomous", "intervention"]  # schemas.episodes.EPISODE_KINDS


@dataclass
class Episode:
    """One episode of one task.

    ``observations`` is (T, obs_dim) float32, ``actions`` (T, action_dim) float32 and ``is_correction``
    (T,) bool: True where a human (or the scripted expert playing one) provided the action.
    ``images`` maps a camera name to T encoded frames (PNG/JPEG bytes); optional.
    """

    episode_id: str
    task: str
    prompt: str
    kind: str
    success: bool
    observations: np.ndarray
    actions: np.ndarray
    is_correction: np.ndarray | None = None
    iteration: int = 0
    collected_by: str = "unknown"
    robot: str = "unknown"
    collected_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    source: str = "python"
    images: dict[str, list[bytes]] | None = None

    def __post_init__(self) -> None:
        self.observations = np.asarray(self.observations, dtype=np.float32)
        self.actions = np.asarray(self.actions, dtype=np.float32)
        if self.is_correction is None:
            self.is_correction = np.zeros(len(self.actions), dtype=bool)
        else:
            self.is_correction = np.asarray(self.is_correction, dtype=bool)

    @property
    def length(self) -> int:
        return len(self.actions)


def stable_episode_id(*parts: object) -> str:
    """A deterministic id from whatever identifies an episode at its source (task, seed, policy, ...).

    Re-collecting or re-importing the same episode yields the same id, which is what makes ingestion
    idempotent across retries and re-materialisations.
    """
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return digest[:24]
