"""Export stored episodes as a LeRobot v3.0 dataset: the way back out to the ecosystem.

By default every task and kind goes into one dataset (``task``, ``kind`` and ``iteration`` narrow it), and
``recap ingest lerobot`` reads it back as it was: each episode's recap task name and kind come from its
``recap/task`` and ``recap/kind`` columns in meta/episodes, as ``recap_import.json`` beside the dataset
says. The files are written by ``recap_core.lerobot_v3.writer`` (the same writer a robot's recorder
uses); this module only reads the store and feeds it one episode at a time, so one episode's camera
frames are in memory at a time. With ``video=True`` cameras become mp4 video features (lossy, far
smaller) instead of parquet image features (byte for byte).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl

from recap_core.lerobot_v3.episode import RecordedEpisode
from recap_core.lerobot_v3.writer import DEFAULT_FRAMES_PER_FILE, DatasetSummary, write_dataset
from recap_core.store.episode_store import STEPS, EpisodeStore
from schemas.episodes import EPISODE_KINDS
from schemas.steps import IMAGE_COLUMN_PREFIX


def export_lerobot(
    store: EpisodeStore,
    out: Path,
    *,
    fps: float,
    task: str | None = None,
    kind: str | None = None,
    iteration: int | None = None,
    frames_per_file: int = DEFAULT_FRAMES_PER_FILE,
    video: bool = False,
) -> DatasetSummary:
    """Write the stored episodes (all, or those of ``task``, ``kind`` and ``iteration``) as one LeRobot
    v3.0 dataset at ``out``, a new folder; with ``video`` its cameras are mp4 video features."""
    if kind is not None and kind not in EPISODE_KINDS:
        raise ValueError(f"kind {kind!r} is not one of {EPISODE_KINDS}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if out.exists():
        raise FileExistsError(f"{out} already exists: export into a new folder")
    versions = store.versions()
    episodes = store.episodes(task=task, kind=kind, iteration=iteration, versions=versions).frame
    if episodes.is_empty():
        raise ValueError(f"no {describe_selection(task, kind, iteration)} in the store")
    episodes = episodes.sort("task", "iteration", "collected_at", "episode_id")
    robots = episodes["robot"].unique(maintain_order=True).to_list()
    summary = write_dataset(
        out,
        _recorded_episodes(store, episodes, versions),
        fps=fps,
        robot_type=str(robots[0]) if len(robots) == 1 else "mixed",
        video=video,
        frames_per_file=frames_per_file,
    )
    return summary


def describe_selection(task: str | None, kind: str | None, iteration: int | None) -> str:
    """'demo episodes of task 'push-v3' in iteration 2', as much of it as was asked."""
    words = (f"{kind} " if kind else "") + "episodes"
    words += f" of task {task!r}" if task is not None else ""
    return words + (f" in iteration {iteration}" if iteration is not None else "")


def stored_cameras(store: EpisodeStore) -> list[str]:
    """Every camera the steps table has a frame column for: what an export writes as image features."""
    steps = store.dataset(STEPS)
    names = steps.schema.names if steps is not None else []
    return sorted(n.removeprefix(IMAGE_COLUMN_PREFIX) for n in names if n.startswith(IMAGE_COLUMN_PREFIX))


def _recorded_episodes(
    store: EpisodeStore, episodes: pl.DataFrame, versions: dict[str, int]
) -> Iterator[RecordedEpisode]:
    """The selected episodes in the writer's terms, read one at a time (states of all, frames lazily)."""
    cameras = stored_cameras(store)
    steps = (
        store.lazy(STEPS, versions)
        .filter(pl.col("episode_id").is_in(episodes["episode_id"].to_list()))
        .select("episode_id", "t", "observation", "action", "is_correction")
        .collect()
        .sort("episode_id", "t")
        .partition_by("episode_id", as_dict=True)
    )
    for episode in episodes.iter_rows(named=True):
        rows = steps.get((episode["episode_id"],))
        length = 0 if rows is None else rows.height
        if length != episode["length"] or rows["t"].to_list() != list(range(length)):
            raise ValueError(
                f"episode {episode['episode_id']}: stored steps do not cover t = 0..{episode['length'] - 1}"
            )
        yield RecordedEpisode(
            state=_matrix(rows["observation"], episode["obs_dim"]),
            action=_matrix(rows["action"], episode["action_dim"]),
            is_intervention=rows["is_correction"].to_numpy().astype(bool),
            images={camera: store.episode_images(episode["episode_id"], camera) for camera in cameras},
            prompt=episode["prompt"],
            task=episode["task"],
            kind=episode["kind"],
            success=bool(episode["success"]),
            iteration=int(episode["iteration"]),
            collected_by=episode["collected_by"],
            source=episode["source"],
            episode_id=episode["episode_id"],
            collected_at=episode["collected_at"],
        )


def _matrix(column: pl.Series, dim: int) -> np.ndarray:
    return np.asarray(column.to_list(), dtype=np.float32).reshape(-1, int(dim))
