"""Turn in-memory ``Episode`` objects into validated Arrow tables, ready for one atomic write.

Everything that can be checked without the store happens here, before any byte is written, so a bad
batch never leaves a trace. Checks against what is already stored (content conflicts, per-task vector
sizes) live in the store itself.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandera.polars as pa
import polars as pl
import pyarrow

from recap_core.episode import Episode
from recap_core.store.errors import EpisodeValidationError, Problem
from schemas.episodes import EPISODES_ARROW_SCHEMA, episodes_validation_schema
from schemas.steps import CAMERA_PATTERN, IMAGE_COLUMN_PREFIX, steps_arrow_schema, steps_validation_schema


@dataclass(frozen=True)
class EpisodeBatch:
    """Validated rows of a batch: one episodes table and one steps table, same episode order."""

    episodes: pyarrow.Table
    steps: pyarrow.Table
    cameras: tuple[str, ...]

    @property
    def episode_ids(self) -> list[str]:
        return self.episodes.column("episode_id").to_pylist()


def content_hash(episode: Episode) -> str:
    """sha256 over what an episode *is* (labels and step arrays), not where/when it was ingested.

    collected_at, collected_by, robot and source are provenance; re-importing the same recording from a
    different path must not count as a conflict.
    """
    digest = hashlib.sha256()
    for label in (episode.task, episode.prompt, episode.kind, bool(episode.success), int(episode.iteration)):
        digest.update(repr(label).encode())
        digest.update(b"\x1f")
    for array in (episode.observations, episode.actions, episode.is_correction):
        array = np.ascontiguousarray(array)
        digest.update(repr(array.shape).encode())
        digest.update(array.tobytes())
    for camera in sorted(episode.images or {}):
        digest.update(camera.encode())
        for frame in episode.images[camera]:
            digest.update(hashlib.sha256(frame).digest())
    return digest.hexdigest()


def _shape_problems(episode: Episode) -> list[Problem]:
    """Structural checks numpy must pass before the arrays can even become table rows."""
    eid = str(episode.episode_id)
    problems: list[Problem] = []
    if episode.success is None:
        problems.append(Problem(eid, "success", None, "success label is missing"))
    elif not isinstance(episode.success, bool | np.bool_):
        problems.append(Problem(eid, "success", episode.success, "success must be a bool"))
    for column, array in (("observation", episode.observations), ("action", episode.actions)):
        if array.ndim != 2:
            problems.append(Problem(eid, column, array.shape, "must be a 2-D (T, dim) array"))
        elif array.shape[1] == 0:
            problems.append(Problem(eid, column, array.shape, "vector size must be at least 1"))
    if episode.length == 0:
        problems.append(Problem(eid, "length", 0, "episode is empty (no steps)"))
    if len(episode.observations) != episode.length:
        problems.append(
            Problem(
                eid,
                "observation",
                len(episode.observations),
                f"row count differs from {episode.length} actions",
            )
        )
    if episode.is_correction.shape != (episode.length,):
        problems.append(
            Problem(eid, "is_correction", episode.is_correction.shape, f"must have shape ({episode.length},)")
        )
    for camera, frames in (episode.images or {}).items():
        if not re.fullmatch(CAMERA_PATTERN, str(camera)):
            rule = "letters, digits, '_' or '-', starting with a letter or digit (at most 64)"
            problems.append(Problem(eid, "camera", camera, f"a camera name must be {rule}"))
            continue
        if len(frames) != episode.length:
            problems.append(
                Problem(
                    eid,
                    f"{IMAGE_COLUMN_PREFIX}{camera}",
                    len(frames),
                    f"frame count differs from {episode.length}",
                )
            )
        problems += _frame_problems(eid, camera, frames)
    if not isinstance(episode.collected_at, datetime):
        problems.append(Problem(eid, "collected_at", episode.collected_at, "must be a datetime"))
    return problems


def _frame_problems(eid: str, camera: str, frames: list) -> list[Problem]:
    """Every frame must be an encoded image (its header read, not the pixels: cheap at ingest) of one
    size: bytes that are not an image used to be accepted and fail a training run later, naming no
    episode or camera."""
    from PIL import Image, UnidentifiedImageError

    column = f"{IMAGE_COLUMN_PREFIX}{camera}"
    size = None
    for t, frame in enumerate(frames):
        if not isinstance(frame, bytes | bytearray | memoryview):
            return [Problem(eid, column, type(frame).__name__, f"frame t={t} is not encoded image bytes")]
        try:
            with Image.open(io.BytesIO(frame)) as image:
                shape = (image.size, image.mode)
        except (UnidentifiedImageError, OSError, ValueError):
            head = bytes(frame[:8])
            return [Problem(eid, column, head, f"frame t={t} is not a readable image (PNG, JPEG, ...)")]
        if size is None:
            size = shape
        elif shape != size:
            return [Problem(eid, column, shape, f"frame t={t} differs from frame 0's size and mode {size}")]
    return []


def _list_array(matrices: list[np.ndarray]) -> pyarrow.ListArray:
    """One Arrow list<float32> column from per-episode (T, d) matrices without a per-row Python loop."""
    values = np.concatenate([m.reshape(-1) for m in matrices]).astype(np.float32, copy=False)
    lengths = np.concatenate([np.full(len(m), m.shape[1], dtype=np.int32) for m in matrices])
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pyarrow.ListArray.from_arrays(pyarrow.array(offsets), pyarrow.array(values))


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _episode_rows(episodes: list[Episode]) -> pyarrow.Table:
    return pyarrow.table(
        {
            "episode_id": [str(e.episode_id) for e in episodes],
            "task": [str(e.task) for e in episodes],
            "prompt": [str(e.prompt) for e in episodes],
            "kind": [str(e.kind) for e in episodes],
            "success": [bool(e.success) for e in episodes],
            "length": [e.length for e in episodes],
            "iteration": [int(e.iteration) for e in episodes],
            "collected_by": [str(e.collected_by) for e in episodes],
            "robot": [str(e.robot) for e in episodes],
            "collected_at": [_utc(e.collected_at) for e in episodes],
            "source": [str(e.source) for e in episodes],
            "obs_dim": [int(e.observations.shape[1]) for e in episodes],
            "action_dim": [int(e.actions.shape[1]) for e in episodes],
            "content_hash": [content_hash(e) for e in episodes],
        },
        schema=EPISODES_ARROW_SCHEMA,
    )


def _step_rows(episodes: list[Episode], cameras: tuple[str, ...]) -> pyarrow.Table:
    lengths = [e.length for e in episodes]
    columns: dict[str, pyarrow.Array] = {
        "episode_id": pyarrow.DictionaryArray.from_arrays(
            pyarrow.array(np.repeat(np.arange(len(episodes), dtype=np.int32), lengths)),
            pyarrow.array([str(e.episode_id) for e in episodes]),
        ).dictionary_decode(),
        "t": pyarrow.array(np.concatenate([np.arange(n, dtype=np.int32) for n in lengths])),
        "observation": _list_array([e.observations for e in episodes]),
        "action": _list_array([e.actions for e in episodes]),
        "is_correction": pyarrow.array(np.concatenate([e.is_correction for e in episodes])),
    }
    schema = steps_arrow_schema(cameras)
    for camera in cameras:
        name = f"{IMAGE_COLUMN_PREFIX}{camera}"
        frames: list[bytes | None] = []
        for e in episodes:
            frames.extend((e.images or {}).get(camera) or [None] * e.length)
        blobs = [
            None if f is None else {"data": bytes(f), "uri": None, "position": None, "size": None}
            for f in frames
        ]
        columns[name] = pyarrow.array(blobs, type=schema.field(name).type)
    return pyarrow.table(columns, schema=schema)


def _first_bad_element(values: list[float] | None) -> tuple[int, float] | None:
    if values is None:
        return None
    for i, v in enumerate(values):
        if v is None or not np.isfinite(v):
            return i, v
    return None


def _pandera_problems(error: pa.errors.SchemaErrors, frame: pl.DataFrame) -> list[Problem]:
    """Translate pandera's failure cases (row index + check) into episode/column/value problems."""
    problems: list[Problem] = []
    for case in error.failure_cases.iter_rows(named=True):
        index, column, check = case["index"], case["column"], case["check"]
        if index is None:
            problems.append(Problem("<batch>", str(column), case["failure_case"], str(check)))
            continue
        row = frame.row(int(index), named=True)
        eid = row.get("episode_id", "<unknown>")
        if column is None or column == "":
            column = "t" if str(check).startswith("t is") else "<row>"
        value = row.get(column, case["failure_case"])
        if column in ("observation", "action"):
            bad = _first_bad_element(value)
            where = f"t={row['t']}"
            if bad is not None:
                where += f", element {bad[0]}"
                value = bad[1]
            problems.append(Problem(eid, column, value, f"{check} ({where})"))
        elif column == "t":
            problems.append(Problem(eid, "t", value, check))
        else:
            problems.append(Problem(eid, column, value, str(check)))
    return problems


def _validate(frame: pl.DataFrame, schema: pa.DataFrameSchema) -> list[Problem]:
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as error:
        return _pandera_problems(error, frame)
    return []


def validate_step_table(steps: pyarrow.Table) -> list[Problem]:
    """pandera checks on a steps table (image blob columns are opaque and skipped)."""
    frame = pl.from_arrow(steps.select(["episode_id", "t", "observation", "action", "is_correction"]))
    return _validate(frame, steps_validation_schema())


def build_batch(episodes: Iterable[Episode]) -> EpisodeBatch:
    """Validate a batch and build its rows; raise ``EpisodeValidationError`` listing every problem."""
    episodes = list(episodes)
    problems: list[Problem] = []
    buildable: list[Episode] = []
    for episode in episodes:
        shape_problems = _shape_problems(episode)
        problems += shape_problems
        if not shape_problems:
            buildable.append(episode)
    if not episodes:
        return EpisodeBatch(EPISODES_ARROW_SCHEMA.empty_table(), steps_arrow_schema().empty_table(), ())
    cameras = tuple(sorted({c for e in buildable for c in (e.images or {})}))
    if buildable:
        episode_rows = _episode_rows(buildable)
        step_rows = _step_rows(buildable, cameras)
        problems += _validate(pl.from_arrow(episode_rows), episodes_validation_schema())
        problems += validate_step_table(step_rows)
        problems += _task_dim_problems(episode_rows)
    if problems:
        raise EpisodeValidationError(problems)
    return EpisodeBatch(episode_rows, step_rows, cameras)


def _task_dim_problems(episode_rows: pyarrow.Table) -> list[Problem]:
    """All episodes of a task in one batch must agree on observation and action sizes."""
    frame = pl.from_arrow(episode_rows.select(["episode_id", "task", "obs_dim", "action_dim"]))
    problems: list[Problem] = []
    for column, dim in (("observation", "obs_dim"), ("action", "action_dim")):
        first = frame.group_by("task", maintain_order=True).agg(pl.col(dim).first().alias("expected"))
        clash = frame.join(first, on="task").filter(pl.col(dim) != pl.col("expected"))
        for row in clash.iter_rows(named=True):
            problems.append(
                Problem(
                    row["episode_id"],
                    column,
                    f"size {row[dim]}",
                    f"task {row['task']!r} has {column} size {row['expected']} elsewhere in this batch",
                )
            )
    return problems
