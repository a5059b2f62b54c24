"""One episode as the writer takes it: arrays and labels in memory, whoever recorded them.

The store's export builds these from Lance rows, the robot recorder from the steps it just ran; neither
needs the other's types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from recap_core.lerobot_v3.layout import EPISODE_KINDS, IMAGE_FEATURE_PREFIX, WRITER_FRAME_COLUMNS

EXTRA_COLUMN_KINDS = "biuf"  # bool, signed and unsigned integers, floats: one number per frame


@dataclass
class RecordedEpisode:
    """``state`` (T, state_dim) and ``action`` (T, action_dim) become float32; ``is_intervention`` (T,)
    marks the steps a human provided (None: none did); ``images`` maps a camera name to T encoded frames
    (PNG or JPEG bytes). ``prompt`` is the language instruction (LeRobot's task text), ``task`` the recap
    task name. The rest is provenance the importer reads back or keeps for people.

    Two optional per-frame additions, for datasets a trainer reads beyond the episode itself (a labelled
    dataset of RECAP): ``frame_prompts`` (T,) gives each frame its own prompt, which LeRobot reads per
    frame through ``task_index`` (``prompt`` stays the episode's own, read back by the importer);
    ``columns`` maps a feature name to (T,) numbers (bool, integer or float), written beside the
    standard frame columns as features of shape [1]."""

    state: np.ndarray
    action: np.ndarray
    prompt: str
    task: str
    kind: str
    success: bool
    is_intervention: np.ndarray | None = None
    images: Mapping[str, Sequence[bytes]] = field(default_factory=dict)
    iteration: int | None = None
    collected_by: str | None = None
    source: str | None = None
    episode_id: str | None = None
    collected_at: datetime | None = None
    policy: Mapping[str, Any] | None = None  # the policy server's metadata, kept as JSON
    frame_prompts: Sequence[str] | None = None
    columns: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.state = np.asarray(self.state, dtype=np.float32)
        self.action = np.asarray(self.action, dtype=np.float32)
        length = len(self.action)
        where = f"episode {self.episode_id or '(new)'} of task {self.task!r}"
        if self.state.ndim != 2 or self.action.ndim != 2 or len(self.state) != length or length == 0:
            raise ValueError(
                f"{where}: state {self.state.shape} and action {self.action.shape} must be (T, dim) with the "
                "same T >= 1"
            )
        if self.is_intervention is None:
            self.is_intervention = np.zeros(length, dtype=bool)
        self.is_intervention = np.asarray(self.is_intervention, dtype=bool)
        if self.is_intervention.shape != (length,):
            raise ValueError(
                f"{where}: is_intervention has shape {self.is_intervention.shape}, not ({length},)"
            )
        if self.kind not in EPISODE_KINDS:
            raise ValueError(f"{where}: kind {self.kind!r} is not one of {EPISODE_KINDS}")
        if not self.prompt.strip():
            raise ValueError(f"{where}: the prompt is empty")
        for camera, frames in self.images.items():
            if len(frames) != length:
                raise ValueError(f"{where}: camera {camera!r} has {len(frames)} frames for {length} steps")
        if self.frame_prompts is not None:
            self.frame_prompts = [str(p) for p in self.frame_prompts]
            if len(self.frame_prompts) != length or not all(p.strip() for p in self.frame_prompts):
                raise ValueError(f"{where}: frame_prompts must be {length} non-empty prompts, one per frame")
        self.columns = {name: self._column(name, values, where) for name, values in self.columns.items()}

    def _column(self, name: str, values: np.ndarray, where: str) -> np.ndarray:
        """One extra per-frame column, checked: its own name, one number per frame."""
        if name in WRITER_FRAME_COLUMNS or name.startswith(IMAGE_FEATURE_PREFIX) or not name:
            raise ValueError(f"{where}: extra column {name!r} would replace a column the writer fills")
        values = np.asarray(values)
        if values.shape != (self.length,) or values.dtype.kind not in EXTRA_COLUMN_KINDS:
            raise ValueError(
                f"{where}: extra column {name!r} is {values.dtype} of shape {values.shape}: need one bool, "
                f"integer or float per frame ({self.length},)"
            )
        return values

    @property
    def length(self) -> int:
        return len(self.action)
