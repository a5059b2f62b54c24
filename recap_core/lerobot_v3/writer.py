"""Write in-memory episodes as one LeRobot v3.0 dataset, with the ``recap_import.json`` that reads it back.

Every task and kind fits in one dataset: LeRobot's ``task_index`` and ``meta/tasks.parquet`` hold one row
per distinct prompt, ``meta/episodes`` holds each episode's recap task name, kind, success, iteration and
collector (``recap/...`` columns), and the frames carry ``next.success`` (True on the last frame of a
success) and ``is_intervention`` (True where a human provided the action). Camera frames go into the
parquet files as LeRobot image features ({bytes, path} structs), byte for byte; with ``video=True`` each
camera becomes a video feature instead: one mp4 per camera and data file, episodes back to back, located
by the ``videos/<key>/*`` columns of meta/episodes, as LeRobot v3.0 writes them (lossy, far smaller).

A dataset made for a trainer can carry more per frame (``RecordedEpisode.columns``: extra features such as
RECAP's value, advantage and indicator) and a prompt per frame (``RecordedEpisode.frame_prompts``: each
frame's ``task_index``; ``prompts`` lists every prompt in meta/tasks.parquet first, in order, whether or
not a frame uses it); ``info`` adds top-level keys of its own (its lineage) to meta/info.json.

``write_dataset`` writes under a hidden sibling folder renamed into place at the end, so a failed or
interrupted write leaves nothing that looks like a dataset.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow
import pyarrow.parquet as pq

from recap_core.lerobot_v3 import layout
from recap_core.lerobot_v3.episode import RecordedEpisode
from recap_core.lerobot_v3.frames import CameraStats, decode_frames, image_shape, sampled_pixels
from recap_core.lerobot_v3.mp4 import Mp4Writer
from recap_core.lerobot_v3.staging import staged_folder

DEFAULT_FRAMES_PER_FILE = 200_000
_INFO_KEYS = frozenset(
    {
        "codebase_version", "robot_type", "total_episodes", "total_frames", "total_tasks", "chunks_size",
        "data_files_size_in_mb", "video_files_size_in_mb", "fps", "splits", "data_path", "video_path",
        "features",
    }
)  # fmt: skip
_IMAGE_STRUCT = pyarrow.struct([("bytes", pyarrow.binary()), ("path", pyarrow.string())])


@dataclass(frozen=True)
class DatasetSummary:
    path: Path
    episodes: int
    frames: int
    cameras: list[str]
    tasks: list[str]
    kinds: list[str]

    def to_dict(self) -> dict:
        """What `recap export lerobot` prints (tasks and kinds are in recap_import.json)."""
        return {
            "path": str(self.path),
            "episodes": self.episodes,
            "frames": self.frames,
            "cameras": self.cameras,
        }


def write_dataset(
    out: Path,
    episodes: Iterable[RecordedEpisode],
    *,
    fps: float,
    robot_type: str = "unknown",
    video: bool = False,
    frames_per_file: int = DEFAULT_FRAMES_PER_FILE,
    prompts: Sequence[str] = (),
    info: Mapping[str, Any] | None = None,
) -> DatasetSummary:
    """Write ``episodes`` (consumed one at a time: a generator keeps one episode's frames in memory) as a
    LeRobot v3.0 dataset at ``out``, a folder that must not exist yet; it appears only when complete."""
    out = Path(out)
    with staged_folder(out) as root:
        writer = DatasetWriter(
            root,
            fps=fps,
            robot_type=robot_type,
            video=video,
            frames_per_file=frames_per_file,
            prompts=prompts,
            info=info,
        )
        try:
            for episode in episodes:
                writer.add(episode)
            summary = writer.finish()
        except BaseException:
            writer.abandon()
            raise
    return replace(summary, path=out)


class DatasetWriter:
    """Fills an empty folder with one dataset: ``add`` each episode, then ``finish`` (or ``abandon``).

    Episodes keep the order they are added in (their ``episode_index``); all must share the state and
    action sizes, the cameras and the extra columns (names and types) of the first, since a LeRobot
    feature has one shape. ``prompts`` take the first task indices, in order; ``info`` adds its keys to
    meta/info.json (none may be one the writer sets)."""

    def __init__(
        self,
        root: Path,
        *,
        fps: float,
        robot_type: str = "unknown",
        video: bool = False,
        frames_per_file: int = DEFAULT_FRAMES_PER_FILE,
        prompts: Sequence[str] = (),
        info: Mapping[str, Any] | None = None,
    ) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if frames_per_file < 1:
            raise ValueError(f"frames_per_file must be >= 1, got {frames_per_file}")
        if any(not str(prompt).strip() for prompt in prompts):
            raise ValueError(f"prompts must be non-empty, got {list(prompts)}")
        taken = sorted(set(info or {}) & _INFO_KEYS)
        if taken:
            raise ValueError(f"info keys {taken} are meta/info.json keys the writer sets")
        self.root, self.fps, self.robot_type = Path(root), float(fps), robot_type
        self.frames_per_file = frames_per_file
        self.videos = _VideoFiles(self.root, self.fps) if video else None
        # prompt -> task_index: the given prompts first, then others in order of first use
        self.prompts: dict[str, int] = {str(prompt): i for i, prompt in enumerate(dict.fromkeys(prompts))}
        self.extra_info = dict(info or {})
        self.per_frame_prompts = False  # some episode's frames carry prompts of their own
        self.extra_values: dict[str, list[np.ndarray]] = {}  # extra column -> its values per episode
        self.tasks: dict[str, None] = {}
        self.kinds: dict[str, None] = {}
        self.collected_by_known = False
        # state_dim, action_dim, cameras, extra columns as (name, numpy dtype) pairs
        self.shapes: tuple[int, int, list[str], list[tuple[str, str]]] | None = None
        self.frames: list[pyarrow.Table] = []
        self.meta_rows: list[dict] = []
        self.states: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []
        self.image_shapes: dict[str, list[int] | None] = {}
        self.camera_stats = CameraStats()
        self.global_index = 0
        self.file_index = 0
        self.frames_in_file = 0

    def add(self, episode: RecordedEpisode) -> None:
        cameras = self._check_shapes(episode)
        length = episode.length
        if self.frames_in_file and self.frames_in_file + length > self.frames_per_file:
            self._write_data_file()
        episode_index = len(self.meta_rows)
        frame_prompts = episode.frame_prompts if episode.frame_prompts is not None else [episode.prompt]
        episode_prompts = list(dict.fromkeys(frame_prompts))  # meta/episodes' tasks, in order of use
        index_of = {prompt: self.prompts.setdefault(prompt, len(self.prompts)) for prompt in episode_prompts}
        if episode.frame_prompts is None:
            task_index = np.full(length, index_of[episode.prompt], dtype=np.int64)
        else:
            self.per_frame_prompts = True
            task_index = np.array([index_of[prompt] for prompt in frame_prompts], dtype=np.int64)
        last = np.arange(length) == length - 1
        columns = {
            "observation.state": _vectors(episode.state),
            "action": _vectors(episode.action),
            "timestamp": pyarrow.array(np.arange(length, dtype=np.float32) / np.float32(self.fps)),
            "frame_index": pyarrow.array(np.arange(length, dtype=np.int64)),
            "episode_index": pyarrow.array(np.full(length, episode_index, dtype=np.int64)),
            "index": pyarrow.array(np.arange(self.global_index, self.global_index + length, dtype=np.int64)),
            "task_index": pyarrow.array(task_index),
            layout.SUCCESS_COLUMN: pyarrow.array(last & bool(episode.success)),
            "next.done": pyarrow.array(last),
            layout.INTERVENTION_COLUMN: pyarrow.array(episode.is_intervention),
        }
        for name, values in episode.columns.items():
            columns[name] = pyarrow.array(values)
            self.extra_values.setdefault(name, []).append(values)
        video_columns = {}
        for camera in cameras:
            frames = list(episode.images[camera])
            key = f"{layout.IMAGE_FEATURE_PREFIX}{camera}"
            if self.videos is not None:
                pixels = _pixels(frames, episode, camera)
                span = self.videos.append(camera, self.file_index, pixels)
                video_columns.update(_video_columns(key, self.file_index, span))
                self.camera_stats.add(camera, pixels)
                continue
            if self.image_shapes.get(camera) is None:
                self.image_shapes[camera] = image_shape(frames[0])  # until an episode's first frame reads
            self.camera_stats.add(camera, sampled_pixels(frames))
            columns[key] = pyarrow.array([{"bytes": frame, "path": None} for frame in frames], _IMAGE_STRUCT)
        self.frames.append(pyarrow.table(columns))
        self.meta_rows.append({**video_columns, **self._meta_row(episode, episode_index, episode_prompts)})
        self.tasks.setdefault(episode.task)
        self.kinds.setdefault(episode.kind)
        self.collected_by_known = self.collected_by_known or episode.collected_by is not None
        self.states.append(episode.state)
        self.actions.append(episode.action)
        self.global_index += length
        self.frames_in_file += length

    def _meta_row(self, episode: RecordedEpisode, episode_index: int, prompts: list[str]) -> dict:
        """The episode's meta/episodes row: LeRobot's columns (``tasks``: every prompt its frames use),
        then what the store knows of it."""
        collected_at = episode.collected_at.isoformat() if episode.collected_at else None
        return {
            "episode_index": episode_index,
            "tasks": prompts,
            "length": episode.length,
            "data/chunk_index": self.file_index // layout.CHUNKS_SIZE,
            "data/file_index": self.file_index % layout.CHUNKS_SIZE,
            "dataset_from_index": self.global_index,
            "dataset_to_index": self.global_index + episode.length,
            "success": bool(episode.success),
            layout.TASK_COLUMN: episode.task,
            layout.KIND_COLUMN: episode.kind,
            layout.EPISODE_SUCCESS_COLUMN: bool(episode.success),
            layout.COLLECTED_BY_COLUMN: episode.collected_by,
            layout.ITERATION_COLUMN: episode.iteration,
            layout.EPISODE_ID_COLUMN: episode.episode_id,
            layout.SOURCE_COLUMN: episode.source,
            layout.COLLECTED_AT_COLUMN: collected_at,
            layout.POLICY_COLUMN: json.dumps(dict(episode.policy), default=str) if episode.policy else None,
            layout.PROMPT_COLUMN: episode.prompt,  # in the schema only when frames carry other prompts
        }

    def finish(self) -> DatasetSummary:
        """Write the last data file, the metadata and ``recap_import.json``; finish the videos."""
        if not self.meta_rows:
            raise ValueError("no episodes to write: a LeRobot dataset needs at least one")
        self._write_data_file()
        state_dim, action_dim, cameras, extra = self.shapes  # type: ignore[misc]
        meta = self.root / "meta"
        episodes_file = self.root / layout.EPISODES_META_FILE
        episodes_file.parent.mkdir(parents=True)
        pq.write_table(pyarrow.Table.from_pylist(self.meta_rows, schema=self._meta_schema()), episodes_file)
        pq.write_table(_tasks_table(self.prompts), meta / "tasks.parquet")
        stats = {
            "observation.state": _stats(np.concatenate(self.states).astype(np.float64)),
            "action": _stats(np.concatenate(self.actions).astype(np.float64)),
            **{
                name: _stats(np.concatenate(values).astype(np.float64)[:, None])
                for name, values in self.extra_values.items()
            },
            **self.camera_stats.to_json(layout.IMAGE_FEATURE_PREFIX),
        }
        (meta / "stats.json").write_text(json.dumps(stats, indent=2))
        if self.videos is not None:
            self.videos.close()  # finishes the mp4 files before the dataset is renamed into place
        video_features = self.videos.features() if self.videos is not None else {}
        info = {
            "codebase_version": layout.CODEBASE_VERSION,
            "robot_type": self.robot_type,
            "total_episodes": len(self.meta_rows),
            "total_frames": self.global_index,
            "total_tasks": len(self.prompts),
            "chunks_size": layout.CHUNKS_SIZE,
            "data_files_size_in_mb": 100,
            "video_files_size_in_mb": 500,
            "fps": self.fps,
            "splits": {"train": f"0:{len(self.meta_rows)}"},
            "data_path": layout.DATA_PATH,
            "video_path": layout.V3_VIDEO_PATH if self.videos is not None else None,
            "features": _features(state_dim, action_dim, self.image_shapes, video_features, extra),
            **self.extra_info,
        }
        (meta / "info.json").write_text(json.dumps(info, indent=2, default=str))
        (self.root / layout.IMPORT_FILE).write_text(json.dumps(self.import_options(), indent=2))
        return DatasetSummary(
            self.root, len(self.meta_rows), self.global_index, cameras, list(self.tasks), list(self.kinds)
        )

    def import_options(self) -> dict:
        """recap_import.json: a task or kind shared by every episode is named as such (what robots and
        older readers write), several are read per episode from their meta/episodes column."""
        tasks, kinds = list(self.tasks), list(self.kinds)
        options: dict = {"task": tasks[0]} if len(tasks) == 1 else {"task_column": layout.TASK_COLUMN}
        options.update({"kind": kinds[0]} if len(kinds) == 1 else {"kind_column": layout.KIND_COLUMN})
        options["success_column"] = layout.SUCCESS_COLUMN
        options["intervention_column"] = layout.INTERVENTION_COLUMN
        if self.collected_by_known:
            options["collected_by_column"] = layout.COLLECTED_BY_COLUMN
        if self.per_frame_prompts:  # task_index names each frame's prompt, this column the episode's
            options["prompt_column"] = layout.PROMPT_COLUMN
        return options

    def abandon(self) -> None:
        """Close the video files after a failure without letting a second error hide the first."""
        if self.videos is not None:
            self.videos.abandon()

    def _check_shapes(self, episode: RecordedEpisode) -> list[str]:
        cameras = sorted(episode.images)
        extra = [(name, values.dtype.name) for name, values in episode.columns.items()]
        shapes = (episode.state.shape[1], episode.action.shape[1], cameras, extra)
        if self.shapes is None:
            self.shapes = shapes
        elif shapes != self.shapes:
            raise ValueError(
                f"episode {episode.episode_id or len(self.meta_rows)} of task {episode.task!r}: state size "
                f"{shapes[0]}, action size {shapes[1]}, cameras {shapes[2]} and extra columns {shapes[3]}, "
                f"but the dataset's first episode has {self.shapes[0]}, {self.shapes[1]}, {self.shapes[2]} "
                f"and {self.shapes[3]}: one LeRobot dataset has one shape per feature (write these episodes "
                "to another dataset)"
            )
        return cameras

    def _write_data_file(self) -> None:
        if not self.frames:
            return
        relative = layout.DATA_PATH.format(
            chunk_index=self.file_index // layout.CHUNKS_SIZE, file_index=self.file_index % layout.CHUNKS_SIZE
        )
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pyarrow.concat_tables(self.frames), path)
        self.frames, self.file_index, self.frames_in_file = [], self.file_index + 1, 0

    def _meta_schema(self) -> pyarrow.Schema:
        """Typed explicitly: a column that is null in every episode (no collector known) keeps its type."""
        text, integer = pyarrow.string(), pyarrow.int64()
        fields = [
            ("episode_index", integer),
            ("tasks", pyarrow.list_(text)),
            ("length", integer),
            ("data/chunk_index", integer),
            ("data/file_index", integer),
            ("dataset_from_index", integer),
            ("dataset_to_index", integer),
            ("success", pyarrow.bool_()),
            (layout.TASK_COLUMN, text),
            (layout.KIND_COLUMN, text),
            (layout.EPISODE_SUCCESS_COLUMN, pyarrow.bool_()),
            (layout.COLLECTED_BY_COLUMN, text),
            (layout.ITERATION_COLUMN, integer),
            (layout.EPISODE_ID_COLUMN, text),
            (layout.SOURCE_COLUMN, text),
            (layout.COLLECTED_AT_COLUMN, text),
            (layout.POLICY_COLUMN, text),
        ]
        if self.per_frame_prompts:
            fields.append((layout.PROMPT_COLUMN, text))
        for camera in self.shapes[2] if self.videos is not None and self.shapes else []:
            prefix = f"videos/{layout.IMAGE_FEATURE_PREFIX}{camera}/"
            fields += [(prefix + "chunk_index", integer), (prefix + "file_index", integer)]
            fields += [
                (prefix + "from_timestamp", pyarrow.float64()),
                (prefix + "to_timestamp", pyarrow.float64()),
            ]
        return pyarrow.schema(fields)


def _tasks_table(prompts: Mapping[str, int]) -> pyarrow.Table:
    """meta/tasks.parquet as LeRobot writes it (a pandas frame indexed by the task text): LeRobot 0.4
    reads it with pandas and takes a frame's task as ``tasks.iloc[task_index].name``, the index label,
    so without the pandas metadata naming ``task`` the index, every frame's task came out as its
    integer row number and no prompt reached a language-conditioned policy. The columns stay
    ``task_index``, ``task`` for readers without pandas."""
    table = pyarrow.table({"task_index": list(prompts.values()), "task": list(prompts)})
    pandas_metadata = {
        "index_columns": ["task"],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {
                "name": "task",
                "field_name": "task",
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            },
        ],
        "creator": {"library": "pyarrow", "version": pyarrow.__version__},
        "pandas_version": "2.2.0",
    }
    return table.replace_schema_metadata({"pandas": json.dumps(pandas_metadata)})


def _vectors(values: np.ndarray) -> pyarrow.Array:
    flat = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    return pyarrow.FixedSizeListArray.from_arrays(pyarrow.array(flat), values.shape[1])


def _stats(values: np.ndarray) -> dict[str, list[float] | list[int]]:
    return {
        "mean": values.mean(axis=0).tolist(),
        "std": values.std(axis=0).tolist(),
        "min": values.min(axis=0).tolist(),
        "max": values.max(axis=0).tolist(),
        "count": [len(values)],
    }


def _features(
    state_dim: int,
    action_dim: int,
    image_shapes: dict[str, list[int] | None],
    video_features: dict[str, dict],
    extra: list[tuple[str, str]],
) -> dict:
    scalar = {"shape": [1], "names": None}
    features = {
        "observation.state": {"dtype": "float32", "shape": [state_dim], "names": None},
        "action": {"dtype": "float32", "shape": [action_dim], "names": None},
        "timestamp": {"dtype": "float32", **scalar},
        "frame_index": {"dtype": "int64", **scalar},
        "episode_index": {"dtype": "int64", **scalar},
        "index": {"dtype": "int64", **scalar},
        "task_index": {"dtype": "int64", **scalar},
        layout.SUCCESS_COLUMN: {"dtype": "bool", **scalar},
        "next.done": {"dtype": "bool", **scalar},
        layout.INTERVENTION_COLUMN: {"dtype": "bool", **scalar},
        **{name: {"dtype": dtype, **scalar} for name, dtype in extra},
    }
    for camera, shape in image_shapes.items():
        features[f"{layout.IMAGE_FEATURE_PREFIX}{camera}"] = {
            "dtype": "image",
            "shape": shape,
            "names": ["height", "width", "channels"],
        }
    for camera, spec in video_features.items():
        features[f"{layout.IMAGE_FEATURE_PREFIX}{camera}"] = spec
    return features


def _pixels(encoded: list[bytes], episode: RecordedEpisode, camera: str) -> np.ndarray:
    """Encoded frames as pixels for the video encoder; a step without a frame cannot be a video frame."""
    if not encoded or any(not frame for frame in encoded):
        raise ValueError(
            f"episode {episode.episode_id or '(new)'}: camera {camera!r} has steps without a frame: "
            "write images, not video"
        )
    return decode_frames(encoded)


def _video_columns(key: str, file_index: int, span: tuple[float, float]) -> dict:
    """The meta/episodes columns that locate an episode's frames in its camera's mp4 (LeRobot v3.0)."""
    return {
        f"videos/{key}/chunk_index": file_index // layout.CHUNKS_SIZE,
        f"videos/{key}/file_index": file_index % layout.CHUNKS_SIZE,
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
            key = f"{layout.IMAGE_FEATURE_PREFIX}{camera}"
            relative = layout.V3_VIDEO_PATH.format(
                video_key=key,
                chunk_index=file_index // layout.CHUNKS_SIZE,
                file_index=file_index % layout.CHUNKS_SIZE,
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
        for _, writer in self.writers.values():
            with contextlib.suppress(Exception):
                writer.close()
        self.writers = {}
