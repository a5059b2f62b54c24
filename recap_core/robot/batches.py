"""Recorded episodes into the fleet's drop folder, a batch of them per LeRobot v3.0 dataset.

A batch is written under a hidden folder inside the drop folder and renamed into place when complete
(``recap_core.lerobot_v3.staging``): the fleet skips hidden folders, and a rename within one file
system is atomic, so a dataset the fleet sees is always whole, and a crash mid-write leaves nothing it
would pick up. Dataset names are ``<robot>-<UTC time>-<8 hex>``: sortable by time, unique across robots
and restarts.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from recap_core.lerobot_v3.episode import RecordedEpisode
from recap_core.lerobot_v3.writer import DatasetSummary, write_dataset

_ROBOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def dataset_name(robot: str, now: datetime | None = None) -> str:
    """``<robot>-<YYYYmmddTHHMMSSZ>-<8 hex>``, e.g. ``arm-7-20261204T041502Z-3fa2c1d0``."""
    if not _ROBOT_NAME.match(robot):
        raise ValueError(f"robot name {robot!r} must be 1-64 letters, digits, '_' or '-' (it names folders)")
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{robot}-{stamp}-{uuid.uuid4().hex[:8]}"


class DropFolderWriter:
    """Collects episodes and writes every ``batch_size`` of them as one dataset; ``close`` (or leaving the
    ``with`` block, even on an error or Ctrl-C) writes the episodes of an unfinished batch too."""

    def __init__(
        self, drop_folder: Path, robot: str, *, fps: float, batch_size: int, video: bool = False
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        dataset_name(robot)  # refuse a bad robot name before anything is recorded
        self.drop_folder, self.robot, self.fps = Path(drop_folder), robot, fps
        self.batch_size, self.video = batch_size, video
        self.pending: list[RecordedEpisode] = []
        self.written: list[DatasetSummary] = []

    def add(self, episode: RecordedEpisode) -> DatasetSummary | None:
        """Keep ``episode``; returns the dataset written when it completed a batch. An episode of other
        shapes than the batch's (a camera added, another state size) starts a new batch, since one
        dataset has one shape per feature."""
        written = None
        if self.pending and _shapes(episode) != _shapes(self.pending[0]):
            written = self.flush()
        self.pending.append(episode)
        return self.flush() if len(self.pending) >= self.batch_size else written

    def flush(self) -> DatasetSummary | None:
        """Write the pending episodes as one dataset now (None when there are none)."""
        if not self.pending:
            return None
        batch, self.pending = self.pending, []
        out = self.drop_folder / dataset_name(self.robot)
        summary = write_dataset(out, batch, fps=self.fps, robot_type=self.robot, video=self.video)
        self.written.append(summary)
        return summary

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> DropFolderWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def _shapes(episode: RecordedEpisode) -> tuple[int, int, list[str]]:
    return episode.state.shape[1], episode.action.shape[1], sorted(episode.images)
