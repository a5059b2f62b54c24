"""Export stored episodes as a LeRobot v3.0 dataset: the way back out to the ecosystem.

One dataset holds one task and one kind of episode, which is how the importer (and the fleet's drop
folder) maps a dataset onto the store; ``recap_import.json`` beside it names the options that read it
back identically: ``next.success`` (True on the last frame of a successful episode) and
``is_intervention`` (True where a human provided the action). Camera images go into the parquet files
as LeRobot image features ({bytes, path} structs) by default, so they survive the round trip byte for
byte. With ``video=True`` each camera becomes a LeRobot video feature instead: one mp4 per camera and data
file (H.264 when PyAV has libx264, else MPEG-4), episodes back to back, located by the ``videos/<key>/*``
columns of meta/episodes, as LeRobot v3.0 writes them. Video is far smaller and what LeRobot's training
tools expect of real datasets, but lossy (yuv420p, CRF 18): frames come back within a few grey levels,
not byte for byte, which is why it is not the default.

The dataset is written to a hidden sibling folder and renamed into place at the end: a failed export
leaves nothing that looks like a dataset.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow
import pyarrow.parquet as pq

from recap_core.sim.cameras import decode_frames
from recap_core.store.episode_store import STEPS, EpisodeStore
from recap_core.store.lerobot_video import V3_VIDEO_PATH, Mp4Writer
from schemas.episodes import EPISODE_KINDS
from schemas.steps import IMAGE_COLUMN_PREFIX

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
SUCCESS_COLUMN = "next.success"
INTERVENTION_COLUMN = "is_intervention"


@dataclass(frozen=True)
class ExportResult:
    path: Path
    episodes: int
    frames: int
    cameras: list[str]

    def to_dict(self) -> dict:
        return {
            "path": str(self.path),
            "episodes": self.episodes,
            "frames": self.frames,
            "cameras": self.cameras,
        }


def export_lerobot(
    store: EpisodeStore,
    out: Path,
    *,
    task: str,
    kind: str,
    fps: float,
    iteration: int | None = None,
    frames_per_file: int = 200_000,
    video: bool = False,
) -> ExportResult:
    """Write ``task``'s ``kind`` episodes (optionally one iteration's) as a LeRobot v3.0 dataset; with
    ``video`` its cameras are mp4 video features rather than parquet image features."""
    if kind not in EPISODE_KINDS:
        raise ValueError(f"kind {kind!r} is not one of {EPISODE_KINDS}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if out.exists():
        raise FileExistsError(f"{out} already exists: export into a new folder")
    versions = store.versions()
    episodes = store.episodes(task=task, kind=kind, iteration=iteration, versions=versions).frame
    if episodes.is_empty():
        raise ValueError(
            f"no {kind} episodes of task {task!r}"
            + (f" in iteration {iteration}" if iteration is not None else "")
            + " in the store"
        )
    episodes = episodes.sort("iteration", "collected_at", "episode_id")
    steps_table = store.dataset(STEPS)
    cameras = sorted(
        name.removeprefix(IMAGE_COLUMN_PREFIX)
        for name in steps_table.schema.names
        if name.startswith(IMAGE_COLUMN_PREFIX)
    )
    steps = (
        store.lazy(STEPS, versions)
        .filter(pl.col("episode_id").is_in(episodes["episode_id"].to_list()))
        .select("episode_id", "t", "observation", "action", "is_correction")
        .collect()
    )
    staging = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        _write_dataset(store, staging, episodes, steps, cameras, task=task, kind=kind, fps=fps,
                       frames_per_file=frames_per_file, video=video)  # fmt: skip
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportResult(out, episodes.height, int(episodes["length"].sum()), cameras)


def _write_dataset(
    store: EpisodeStore,
    root: Path,
    episodes: pl.DataFrame,
    steps: pl.DataFrame,
    cameras: list[str],
    *,
    task: str,
    kind: str,
    fps: float,
    frames_per_file: int,
    video: bool,
) -> None:
    videos = _VideoFiles(root, fps) if video else None
    try:
        _write_files(store, root, episodes, steps, cameras, task=task, kind=kind, fps=fps,
                     frames_per_file=frames_per_file, videos=videos)  # fmt: skip
    except BaseException:
        if videos is not None:
            videos.abandon()
        raise
    if videos is not None:
        videos.close()  # finishes the mp4 files before the dataset is renamed into place


def _write_files(
    store: EpisodeStore,
    root: Path,
    episodes: pl.DataFrame,
    steps: pl.DataFrame,
    cameras: list[str],
    *,
    task: str,
    kind: str,
    fps: float,
    frames_per_file: int,
    videos: _VideoFiles | None,
) -> None:
    by_episode = steps.sort("episode_id", "t").partition_by("episode_id", as_dict=True)
    prompts = episodes["prompt"].unique(maintain_order=True).to_list()
    task_index = {prompt: index for index, prompt in enumerate(prompts)}
    obs_dim, action_dim = int(episodes["obs_dim"][0]), int(episodes["action_dim"][0])
    frames: list[pyarrow.Table] = []
    meta_rows: list[dict] = []
    image_shapes: dict[str, list[int] | None] = {}
    camera_stats = _CameraStats()
    global_index = 0
    file_index = 0
    frames_in_file = 0
    for episode_index, episode in enumerate(episodes.iter_rows(named=True)):
        rows = by_episode[(episode["episode_id"],)]
        length = rows.height
        if length != episode["length"] or rows["t"].to_list() != list(range(length)):
            raise ValueError(
                f"episode {episode['episode_id']}: stored steps do not cover t = 0..{length - 1}"
            )
        if frames_in_file and frames_in_file + length > frames_per_file:
            _write_data_file(root, frames, file_index)
            frames, file_index, frames_in_file = [], file_index + 1, 0
        columns = {
            "observation.state": _vectors(rows["observation"], obs_dim),
            "action": _vectors(rows["action"], action_dim),
            "timestamp": pyarrow.array(np.arange(length, dtype=np.float32) / np.float32(fps)),
            "frame_index": pyarrow.array(np.arange(length, dtype=np.int64)),
            "episode_index": pyarrow.array(np.full(length, episode_index, dtype=np.int64)),
            "index": pyarrow.array(np.arange(global_index, global_index + length, dtype=np.int64)),
            "task_index": pyarrow.array(np.full(length, task_index[episode["prompt"]], dtype=np.int64)),
            SUCCESS_COLUMN: pyarrow.array([episode["success"] and t == length - 1 for t in range(length)]),
            "next.done": pyarrow.array([t == length - 1 for t in range(length)]),
            INTERVENTION_COLUMN: pyarrow.array(rows["is_correction"].to_numpy().astype(bool)),
        }
        video_columns = {}
        for camera in cameras:
            encoded = store.episode_images(episode["episode_id"], camera)
            if videos is not None:
                pixels = _pixels(encoded, episode["episode_id"], camera)
                span = videos.append(camera, file_index, pixels)
                video_columns.update(_video_columns(f"observation.images.{camera}", file_index, span))
                camera_stats.add(camera, pixels)
                continue
            image_shapes.setdefault(camera, _image_shape(encoded[0]) if encoded else None)
            camera_stats.add(camera, _sampled_pixels(encoded))
            columns[f"observation.images.{camera}"] = pyarrow.array(
                [{"bytes": frame, "path": None} for frame in encoded],
                type=pyarrow.struct([("bytes", pyarrow.binary()), ("path", pyarrow.string())]),
            )
        frames.append(pyarrow.table(columns))
        meta_rows.append(
            {
                **video_columns,
                "episode_index": episode_index,
                "tasks": [episode["prompt"]],
                "length": length,
                "data/chunk_index": file_index // CHUNKS_SIZE,
                "data/file_index": file_index % CHUNKS_SIZE,
                "dataset_from_index": global_index,
                "dataset_to_index": global_index + length,
                "success": bool(episode["success"]),
                "recap/episode_id": episode["episode_id"],
                "recap/iteration": int(episode["iteration"]),
                "recap/collected_by": episode["collected_by"],
                "recap/source": episode["source"],
            }
        )
        global_index += length
        frames_in_file += length
    _write_data_file(root, frames, file_index)
    meta = root / "meta"
    (meta / "episodes" / "chunk-000").mkdir(parents=True)
    pq.write_table(pyarrow.Table.from_pylist(meta_rows), meta / "episodes" / "chunk-000" / "file-000.parquet")
    pq.write_table(
        pyarrow.table({"task_index": list(task_index.values()), "task": list(task_index)}),
        meta / "tasks.parquet",
    )
    all_frames = steps.sort("episode_id", "t")
    stats = {
        "observation.state": _stats(np.asarray(all_frames["observation"].to_list(), dtype=np.float64)),
        "action": _stats(np.asarray(all_frames["action"].to_list(), dtype=np.float64)),
        **camera_stats.to_json(),
    }
    (meta / "stats.json").write_text(json.dumps(stats, indent=2))
    info = {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": str(episodes["robot"][0]),
        "total_episodes": episodes.height,
        "total_frames": global_index,
        "total_tasks": len(task_index),
        "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 500,
        "fps": fps,
        "splits": {"train": f"0:{episodes.height}"},
        "data_path": DATA_PATH,
        "video_path": V3_VIDEO_PATH if videos is not None else None,
        "features": _features(obs_dim, action_dim, image_shapes, videos.features() if videos else {}),
    }
    (meta / "info.json").write_text(json.dumps(info, indent=2))
    sidecar = {
        "task": task,
        "kind": kind,
        "success_column": SUCCESS_COLUMN,
        "intervention_column": INTERVENTION_COLUMN,
    }
    (root / "recap_import.json").write_text(json.dumps(sidecar, indent=2))


def _vectors(column: pl.Series, dim: int) -> pyarrow.Array:
    flat = np.asarray(column.to_list(), dtype=np.float32).reshape(-1)
    return pyarrow.FixedSizeListArray.from_arrays(pyarrow.array(flat), dim)


def _write_data_file(root: Path, frames: list[pyarrow.Table], file_index: int) -> None:
    relative = DATA_PATH.format(chunk_index=file_index // CHUNKS_SIZE, file_index=file_index % CHUNKS_SIZE)
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pyarrow.concat_tables(frames), path)


def _image_shape(encoded: bytes) -> list[int] | None:
    """[height, width, channels] of an encoded frame, or None if it is not an image PIL can read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(encoded)) as image:
            return [image.height, image.width, len(image.getbands())]
    except (UnidentifiedImageError, OSError):
        return None


def _stats(values: np.ndarray) -> dict[str, list[float] | list[int]]:
    return {
        "mean": values.mean(axis=0).tolist(),
        "std": values.std(axis=0).tolist(),
        "min": values.min(axis=0).tolist(),
        "max": values.max(axis=0).tolist(),
        "count": [len(values)],
    }


def _features(
    obs_dim: int, action_dim: int, image_shapes: dict[str, list[int] | None], video_features: dict[str, dict]
) -> dict:
    scalar = {"shape": [1], "names": None}
    features = {
        "observation.state": {"dtype": "float32", "shape": [obs_dim], "names": None},
        "action": {"dtype": "float32", "shape": [action_dim], "names": None},
        "timestamp": {"dtype": "float32", **scalar},
        "frame_index": {"dtype": "int64", **scalar},
        "episode_index": {"dtype": "int64", **scalar},
        "index": {"dtype": "int64", **scalar},
        "task_index": {"dtype": "int64", **scalar},
        SUCCESS_COLUMN: {"dtype": "bool", **scalar},
        "next.done": {"dtype": "bool", **scalar},
        INTERVENTION_COLUMN: {"dtype": "bool", **scalar},
    }
    for camera, shape in image_shapes.items():
        features[f"observation.images.{camera}"] = {
            "dtype": "image",
            "shape": shape,
            "names": ["height", "width", "channels"],
        }
    for camera, spec in video_features.items():
        features[f"observation.images.{camera}"] = spec
    return features


def _pixels(encoded: list[bytes], episode_id: str, camera: str) -> np.ndarray:
    """Stored frames as pixels for the video encoder; a step without a frame cannot be a video frame."""
    if not encoded or any(not frame for frame in encoded):
        raise ValueError(f"episode {episode_id}: camera {camera!r} has steps without a frame: export images")
    return decode_frames(encoded)


def _sampled_pixels(encoded: list[bytes], samples: int = 100) -> np.ndarray | None:
    """Up to ``samples`` evenly spaced frames of an episode as pixels (LeRobot also samples image features
    for their statistics), or None when a frame is not an image PIL can read."""
    from PIL import UnidentifiedImageError

    if not encoded:
        return None
    picks = np.unique(np.linspace(0, len(encoded) - 1, min(samples, len(encoded))).round().astype(int))
    try:
        return decode_frames([encoded[i] for i in picks])
    except (UnidentifiedImageError, OSError, ValueError):
        return None


class _CameraStats:
    """Per-channel pixel statistics of each camera, which LeRobot keeps in stats.json for image and video
    features (values scaled to [0, 1], shape (3, 1, 1)) and policies use to normalise camera inputs.
    Accumulated as sums, so no camera is held in memory; a camera with an unreadable frame gets none."""

    def __init__(self) -> None:
        self.totals: dict[str, dict[str, np.ndarray | int]] = {}
        self.unreadable: set[str] = set()

    def add(self, camera: str, pixels: np.ndarray | None) -> None:
        if pixels is None or camera in self.unreadable:
            self.unreadable.add(camera)
            return
        values = pixels.reshape(-1, pixels.shape[-1]).astype(np.float64) / 255.0
        total = self.totals.setdefault(
            camera,
            {"frames": 0, "pixels": 0, "sum": 0.0, "squares": 0.0, "min": np.inf, "max": -np.inf},
        )
        total["frames"] += len(pixels)
        total["pixels"] += len(values)
        total["sum"] = total["sum"] + values.sum(axis=0)
        total["squares"] = total["squares"] + np.square(values).sum(axis=0)
        total["min"] = np.minimum(total["min"], values.min(axis=0))
        total["max"] = np.maximum(total["max"], values.max(axis=0))

    def to_json(self) -> dict[str, dict[str, list]]:
        out = {}
        for camera, total in self.totals.items():
            if camera in self.unreadable:
                continue
            mean = total["sum"] / total["pixels"]
            std = np.sqrt(np.maximum(total["squares"] / total["pixels"] - np.square(mean), 0.0))
            per_channel = {"min": total["min"], "max": total["max"], "mean": mean, "std": std}
            out[f"observation.images.{camera}"] = {
                **{name: value.reshape(3, 1, 1).tolist() for name, value in per_channel.items()},
                "count": [int(total["frames"])],
            }
        return out


def _video_columns(key: str, file_index: int, span: tuple[float, float]) -> dict:
    """The meta/episodes columns that locate an episode's frames in its camera's mp4 (LeRobot v3.0)."""
    return {
        f"videos/{key}/chunk_index": file_index // CHUNKS_SIZE,
        f"videos/{key}/file_index": file_index % CHUNKS_SIZE,
        f"videos/{key}/from_timestamp": span[0],
        f"videos/{key}/to_timestamp": span[1],
    }


class _VideoFiles:
    """One open mp4 per camera for the data file being written; a new data file starts new videos, so
    an episode's frames and rows share one file index."""

    def __init__(self, root: Path, fps: float) -> None:
        self.root, self.fps = root, fps
        self.writers: dict[str, tuple[int, Mp4Writer]] = {}
        self.specs: dict[str, dict] = {}

    def append(self, camera: str, file_index: int, frames: np.ndarray) -> tuple[float, float]:
        """Encode one episode's frames; returns (from_timestamp, to_timestamp) in that camera's file."""
        current = self.writers.get(camera)
        if current is None or current[0] != file_index:
            if current is not None:
                current[1].close()
            key = f"observation.images.{camera}"
            relative = V3_VIDEO_PATH.format(
                video_key=key, chunk_index=file_index // CHUNKS_SIZE, file_index=file_index % CHUNKS_SIZE
            )
            height, width = frames.shape[1:3]
            current = (file_index, Mp4Writer(self.root / relative, self.fps, width, height))
            self.writers[camera] = current
        writer = current[1]
        if frames.shape[1:] != (writer.height, writer.width, 3):
            raise ValueError(
                f"camera {camera!r}: frames of {frames.shape[1:]} after {(writer.height, writer.width, 3)}: "
                "a video feature needs one frame size"
            )
        start = writer.frames_written / self.fps
        writer.append(frames)
        self.specs.setdefault(camera, writer.feature_info())
        return start, writer.frames_written / self.fps

    def features(self) -> dict[str, dict]:
        """info.json entries of the video features, as LeRobot writes them."""
        return {
            camera: {
                "dtype": "video",
                "shape": [info["video.height"], info["video.width"], 3],
                "names": ["height", "width", "channels"],
                "info": info,
            }
            for camera, info in self.specs.items()
        }

    def close(self) -> None:
        for _, writer in self.writers.values():
            writer.close()
        self.writers = {}

    def abandon(self) -> None:
        """Close the files after a failure without letting a second error hide the first."""
        for _, writer in self.writers.values():
            with contextlib.suppress(Exception):
                writer.close()
        self.writers = {}
