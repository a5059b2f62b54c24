"""Import LeRobot datasets (format v3.0, and v2.1) into the episode store (pyarrow for parquet, PyAV for mp4).

LeRobot stores frames in parquet files (``data/``), one row per frame, with ``episode_index``,
``frame_index``, ``task_index``, ``timestamp``, ``observation.state`` and ``action``; the task strings live
in ``meta/tasks.parquet`` (v3.0) or ``meta/tasks.jsonl`` (v2.1), episode lengths in ``meta/episodes/``
(v3.0) or ``meta/episodes.jsonl`` (v2.1). Camera streams become ``image_<camera>`` blob columns, one
encoded frame per step: image features stored inside the parquet files (``{bytes, path}`` structs) keep
their bytes, and video features (mp4 files under ``videos/``) are decoded frame-aligned with the rows
by timestamp and stored as lossless PNG (``recap_core.store.lerobot_video``). A user who wants states
only passes ``LeRobotOptions(decode_videos=False)``; the video features are then reported as skipped.

A dataset of several tasks or kinds says each episode's in meta/episodes columns (``task_column``,
``kind_column``; ours are ``recap/task`` and ``recap/kind``, written by ``recap_core.lerobot_v3``), which
is how an export of ours, or a robot's batch, reads back exactly; ``recap_import.json`` beside the
dataset names them (``recap_core.store.lerobot_sidecar``). A dataset whose frames carry prompts of their
own (a labelled dataset: ``task_index`` per frame names its indicator prompt) names the episode's prompt in
a meta/episodes column too (``prompt_column``; ours is ``recap/prompt``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recap_core.episode import Episode, stable_episode_id
from recap_core.lerobot_v3.layout import IMPORT_FILE
from recap_core.names import require_task_name, task_name_from_text
from recap_core.store import lerobot_video
from recap_core.store.lerobot_video import VideoDecodeError, VideoSegment, camera_name
from schemas.episodes import EPISODE_KINDS
from schemas.steps import CAMERA_PATTERN


class LeRobotFormatError(ValueError):
    """The dataset is not a LeRobot dataset this importer can read, or lacks something it needs."""


@dataclass(frozen=True)
class LeRobotOptions:
    """How LeRobot columns map onto episodes. Success and intervention columns are dataset-specific."""

    kind: str | None = None  # every episode's kind; or kind_column
    task: str | None = None  # our task name; default: task_column, else a name made from LeRobot's task text
    success_column: str | None = None  # per-frame or per-episode bool (e.g. next.success): any() per episode
    assume_success: bool | None = None  # label every episode when the dataset has no success column
    intervention_column: str | None = None  # per-frame bool: a human provided this action
    iteration: int = 0
    state_column: str = "observation.state"
    action_column: str = "action"
    collected_by: str = "lerobot"
    decode_videos: bool = True  # False: states only, video features are reported as skipped
    # Values beyond this (absolute) are refused; None: meta/stats.json's range (a small margin beyond it)
    # when present, else DEFAULT_MAX_ABS. Raise it for data that really is that large.
    max_abs_value: float | None = None
    # When the success column is in meta/episodes and in the frames and they disagree: None refuses the
    # dataset, "meta" or "frames" chooses one of them.
    success_source: str | None = None
    # Per-episode columns of meta/episodes (v3.0), for a dataset holding several tasks or kinds (ours are
    # recap/task, recap/kind and recap/collected_by: recap_core.lerobot_v3.layout); each is the
    # alternative to the fixed value above it.
    task_column: str | None = None
    kind_column: str | None = None
    collected_by_column: str | None = None  # a null falls back to collected_by
    # The meta/episodes column holding each episode's prompt, for a dataset whose frames carry prompts of
    # their own (a labelled dataset's indicator prompts, one task_index per frame: ours is recap/prompt);
    # without it an episode's frames must share one task_index, its prompt.
    prompt_column: str | None = None

    def __post_init__(self) -> None:
        for fixed, column in (("task", "task_column"), ("kind", "kind_column")):
            if getattr(self, fixed) is not None and getattr(self, column) is not None:
                raise LeRobotFormatError(
                    f"{fixed} {getattr(self, fixed)!r} and {column} {getattr(self, column)!r} both say each "
                    f"episode's {fixed}: give one"
                )
        if self.kind is None and self.kind_column is None:
            raise LeRobotFormatError(
                "no episode kind: pass --kind (demo | autonomous | intervention), or name the meta/episodes "
                "column holding each episode's (kind_column in recap_import.json)"
            )
        if self.kind is not None and self.kind not in EPISODE_KINDS:
            raise LeRobotFormatError(f"kind {self.kind!r} is not one of {EPISODE_KINDS}")
        if self.success_source not in (None, "meta", "frames"):
            raise LeRobotFormatError(
                f"success_source must be 'meta' or 'frames', got {self.success_source!r}"
            )
        if self.max_abs_value is not None and not self.max_abs_value > 0:
            raise LeRobotFormatError(f"max_abs_value must be > 0, got {self.max_abs_value}")
        if self.task is not None:
            try:
                require_task_name(self.task)
            except ValueError as error:
                raise LeRobotFormatError(str(error)) from None


@dataclass
class LeRobotDataset:
    """A resolved local copy of a LeRobot dataset and what the importer found in it."""

    root: Path
    source_id: str
    version: str
    info: dict
    tasks: dict[int, str]
    episode_lengths: dict[int, int]
    data_files: list[Path]
    video_features: list[str] = field(default_factory=list)
    stats: dict = field(default_factory=dict)  # meta/stats.json: per feature min / max / mean / std

    @property
    def total_frames(self) -> int:
        return int(sum(self.episode_lengths.values()))

    def skipped_features(self, options: LeRobotOptions) -> list[str]:
        """Features these options do not import: the video features when videos are not decoded."""
        return [] if options.decode_videos else list(self.video_features)


def resolve(
    source: str,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    fetch_videos: bool = True,
) -> tuple[Path, str]:
    """A local directory as is, otherwise a Hub dataset repo id through the huggingface_hub cache.

    HF_HUB_OFFLINE, as it is when this is called, means the local cache only (``hub_offline``); else
    it fetches the metadata and parquet files, and the mp4 files under videos/ unless ``fetch_videos``
    is False (they are most of a dataset's size, and a state-only import does not read them).
    """
    path = Path(source).expanduser()
    if path.exists():
        if not (path / "meta" / "info.json").is_file():
            raise LeRobotFormatError(f"{path} has no meta/info.json: not a LeRobot dataset directory")
        return path.resolve(), str(path.resolve())
    if source.count("/") != 1:
        raise LeRobotFormatError(
            f"{source!r} is neither an existing directory nor a Hub repo id (owner/name)"
        )
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    from recap_core.hub_offline import hub_offline

    try:
        local = snapshot_download(
            source,
            repo_type="dataset",
            revision=revision,
            cache_dir=cache_dir,
            allow_patterns=[
                "meta/*",
                "meta/**",
                "data/**",
                IMPORT_FILE,
                *(["videos/**"] if fetch_videos else []),
            ],
            local_files_only=hub_offline(),
        )
    except (LocalEntryNotFoundError, OfflineModeIsEnabled, HfHubHTTPError) as error:
        raise LeRobotFormatError(
            f"could not get Hub dataset {source!r} (offline or not in the local cache?): {error}"
        ) from error
    return Path(local), source


def _unreadable_parquet(path: Path, error: Exception) -> LeRobotFormatError:
    first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
    return LeRobotFormatError(f"{path}: not a readable parquet file ({first_line})")


def read_parquet(path: Path, columns: list[str] | None = None) -> pyarrow.Table:
    """A parquet file, or a one-line error naming it (truncated or garbage files raise deep in Arrow)."""
    try:
        return pq.read_table(path, columns=columns)
    except (pyarrow.ArrowInvalid, OSError) as error:
        raise _unreadable_parquet(path, error) from None


def read_schema_names(path: Path) -> list[str]:
    try:
        return pq.read_schema(path).names
    except (pyarrow.ArrowInvalid, OSError) as error:
        raise _unreadable_parquet(path, error) from None


def read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise LeRobotFormatError(f"{path}: not valid JSON ({error})") from None


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise LeRobotFormatError(f"{path}, line {number}: not valid JSON ({error})") from None
    return rows


def _tasks(root: Path) -> dict[int, str]:
    parquet = root / "meta" / "tasks.parquet"
    if parquet.is_file():
        table = pl.from_arrow(read_parquet(parquet))
        text = next(
            (c for c in ("task", "__index_level_0__") if c in table.columns),
            next((c for c, d in table.schema.items() if d == pl.String), None),
        )
        if text is None or "task_index" not in table.columns:
            raise LeRobotFormatError(f"{parquet} needs a task_index column and a task string column")
        return _task_texts(parquet, zip(table["task_index"].to_list(), table[text].to_list(), strict=True))
    jsonl = root / "meta" / "tasks.jsonl"
    if jsonl.is_file():
        return _task_texts(jsonl, ((r["task_index"], r["task"]) for r in read_jsonl(jsonl)))
    raise LeRobotFormatError(f"{root}/meta has neither tasks.parquet (v3.0) nor tasks.jsonl (v2.1)")


def _task_texts(path: Path, pairs) -> dict[int, str]:
    """task_index -> text; one index naming two texts (the last used to win silently, and its episodes
    got the wrong task) or a missing text is refused."""
    texts: dict[int, str] = {}
    for index, text in pairs:
        if index is None or not isinstance(text, str) or not text.strip():
            raise LeRobotFormatError(f"{path}: task_index {index!r} has no task text ({text!r})")
        if int(index) in texts and texts[int(index)] != text:
            raise LeRobotFormatError(
                f"{path}: task_index {index} names two tasks, {texts[int(index)]!r} and {text!r}"
            )
        texts[int(index)] = text
    return texts


def _stats(root: Path) -> dict:
    """meta/stats.json (per feature min, max, ...), or {} when the dataset has none."""
    path = root / "meta" / "stats.json"
    if not path.is_file():
        return {}
    stats = read_json(path)
    if not isinstance(stats, dict):
        raise LeRobotFormatError(f"{path}: expected a JSON object of feature -> statistics")
    return stats


def _episode_lengths(root: Path) -> dict[int, int]:
    files = sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
    if files:
        table = pl.concat(
            [pl.from_arrow(read_parquet(f, columns=["episode_index", "length"])) for f in files]
        )
        lengths = dict(zip(table["episode_index"].to_list(), table["length"].to_list(), strict=True))
    elif (root / "meta" / "episodes.jsonl").is_file():
        rows = read_jsonl(root / "meta" / "episodes.jsonl")
        lengths = {int(r["episode_index"]): int(r["length"]) for r in rows}
    else:
        lengths = None
    if lengths is not None:
        bad = [(e, n) for e, n in lengths.items() if n is None or int(n) < 1]
        if bad:
            raise LeRobotFormatError(f"episode {bad[0][0]}: meta/episodes column 'length' = {bad[0][1]}")
        return {int(e): int(n) for e, n in lengths.items()}
    raise LeRobotFormatError(
        f"{root}/meta has neither episodes/chunk-*/file-*.parquet (v3.0) nor episodes.jsonl"
    )


def _check_info_counts(root: Path, info: dict, lengths: dict[int, int]) -> None:
    """info.json's totals must agree with meta/episodes: a mismatch means a partial or edited copy."""
    for key, actual in (("total_episodes", len(lengths)), ("total_frames", sum(lengths.values()))):
        declared = info.get(key)
        if declared is not None and int(declared) != actual:
            raise LeRobotFormatError(
                f"{root}/meta/info.json: column {key!r} = {declared}, but meta/episodes lists {actual}"
            )


def open_dataset(
    source: str,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    fetch_videos: bool = True,
) -> LeRobotDataset:
    """Read a LeRobot dataset's metadata (v3.0 or v2.1) and list its data files.

    ``fetch_videos`` only matters for a Hub repo id: False downloads no mp4 files (for
    ``LeRobotOptions(decode_videos=False)``)."""
    root, source_id = resolve(source, revision, cache_dir, fetch_videos)
    info = read_json(root / "meta" / "info.json")
    if not isinstance(info, dict):
        raise LeRobotFormatError(f"{root}/meta/info.json: expected a JSON object, got {type(info).__name__}")
    version = str(info.get("codebase_version", ""))
    if not version.startswith(("v3.", "v2.")):
        raise LeRobotFormatError(f"{source}: codebase_version {version!r} is not supported (v3.0 or v2.1)")
    data_files = sorted((root / "data").glob("chunk-*/*.parquet"))
    if not data_files:
        raise LeRobotFormatError(f"{source}: no parquet files under data/chunk-*/")
    features = info.get("features", {})
    if not isinstance(features, dict) or not all(isinstance(spec, dict) for spec in features.values()):
        found = type(features).__name__ if not isinstance(features, dict) else "a feature that is not one"
        raise LeRobotFormatError(
            f"{root}/meta/info.json: 'features' must map each feature name to its spec (a JSON object), "
            f"got {found}"
        )
    videos = sorted(name for name, spec in features.items() if spec.get("dtype") == "video")
    lengths = _episode_lengths(root)
    _check_info_counts(root, info, lengths)
    return LeRobotDataset(
        root, source_id, version, info, _tasks(root), lengths, data_files, videos, _stats(root)
    )


DEFAULT_MAX_ABS = 1e6
"""The bound on state and action values when a dataset has no meta/stats.json: far beyond any robot's
states and actions (in SI units or normalised), far below the 3e38 or 1e30 of a corrupted file."""
STATS_MARGIN = 0.01
"""How far beyond meta/stats.json's [min, max] a value may lie, as a share of that range (rounding)."""


def _matrix(
    column: pyarrow.ChunkedArray, rows: int, name: str, episode: int, declared: str | None = None
) -> np.ndarray:
    """The column's vectors as a (rows, dim) float32 matrix; ``declared`` is info.json's dtype, which
    the stored values must have (int64 states declared float32 were cast silently)."""
    values = column.combine_chunks()
    kind = values.type
    is_list = pyarrow.types.is_list(kind) or pyarrow.types.is_fixed_size_list(kind)
    is_list = is_list or pyarrow.types.is_large_list(kind)
    if not is_list or not (
        pyarrow.types.is_floating(kind.value_type) or pyarrow.types.is_integer(kind.value_type)
    ):
        first = values[0].as_py() if len(values) else None
        raise LeRobotFormatError(
            f"episode {episode}: column {name!r} = {str(first)[:60]} ({kind}): expected numeric vectors"
        )
    if declared is not None and _dtype_family(str(kind.value_type)) != _dtype_family(declared):
        raise LeRobotFormatError(
            f"episode {episode}: column {name!r} holds {kind.value_type} values, meta/info.json declares "
            f"{declared}"
        )
    lengths = pc.list_value_length(values).to_numpy(zero_copy_only=False)
    if rows and (lengths.min() != lengths.max()):
        bad = int(np.argmax(lengths != lengths[0]))
        raise LeRobotFormatError(
            f"episode {episode}: column {name!r} has vectors of size {lengths[bad]} and {lengths[0]}"
        )
    flat = values.flatten().to_numpy(zero_copy_only=False)
    return flat.reshape(rows, -1).astype(np.float32, copy=False)


def _dtype_family(dtype: str) -> str:
    """float / int / other: a declared float32 holds any float, an int64 no float."""
    if dtype.startswith(("float", "double", "halffloat")):
        return "float"
    if dtype.startswith(("int", "uint", "bool")):
        return "int"
    return dtype


def _bounds(
    dataset: LeRobotDataset, options: LeRobotOptions, column: str, dim: int
) -> tuple[np.ndarray, np.ndarray, str]:
    """The range a column's values must lie in, and where it comes from."""
    if options.max_abs_value is not None:
        bound = float(options.max_abs_value)
        return np.full(dim, -bound), np.full(dim, bound), "--max-abs-value"
    stats = dataset.stats.get(column) or {}
    low, high = stats.get("min"), stats.get("max")
    if isinstance(low, list) and isinstance(high, list) and len(low) == len(high) == dim:
        low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
        margin = STATS_MARGIN * np.maximum(high - low, 1.0) + 1e-6
        return low - margin, high + margin, "meta/stats.json's min and max"
    return np.full(dim, -DEFAULT_MAX_ABS), np.full(dim, DEFAULT_MAX_ABS), "the default bound"


def _check_bounds(
    dataset: LeRobotDataset, options: LeRobotOptions, column: str, matrix: np.ndarray, episode: int
) -> None:
    """Refuse values outside the column's range, naming episode, column, frame, element and value."""
    low, high, source = _bounds(dataset, options, column, matrix.shape[1])
    outside = (matrix < low) | (matrix > high)
    if outside.any():
        frame, element = (int(i) for i in np.argwhere(outside)[0])
        raise LeRobotFormatError(
            f"episode {episode}: column {column!r} frame {frame} element {element} = "
            f"{float(matrix[frame, element]):.6g} is outside [{low[element]:.6g}, {high[element]:.6g}] "
            f"({source}); pass --max-abs-value for data that really is that large"
        )


def flags(values: pyarrow.ChunkedArray | pyarrow.Array, column: str, episode: int) -> np.ndarray:
    """A boolean column: bool, or integers that are all 0 or 1. Strings ("yes"/"no") and fractions (0.5)
    used to be truthy everywhere and mark every frame; now they are refused, naming the value."""
    kind = values.type
    if pyarrow.types.is_boolean(kind):
        if values.null_count:
            raise LeRobotFormatError(f"episode {episode}: column {column!r} has nulls")
        return values.to_numpy(zero_copy_only=False).astype(bool)
    if pyarrow.types.is_integer(kind):
        array = values.to_numpy(zero_copy_only=False)
        if values.null_count:
            raise LeRobotFormatError(f"episode {episode}: column {column!r} has nulls")
        bad = array[(array != 0) & (array != 1)]
        if len(bad):
            raise LeRobotFormatError(
                f"episode {episode}: column {column!r} = {bad[0]}: a flag must be boolean or 0/1"
            )
        return array.astype(bool)
    first = values[0].as_py() if len(values) else None
    raise LeRobotFormatError(
        f"episode {episode}: column {column!r} = {first!r} ({kind}): a flag must be boolean or 0/1 integers"
    )


def _image_frames(column: pyarrow.ChunkedArray) -> list[bytes]:
    """LeRobot image features are ``{bytes, path}`` structs; we keep the encoded bytes."""
    return [row["bytes"] if isinstance(row, dict) else row for row in column.to_pylist()]


def _episode_level_success(dataset: LeRobotDataset, column: str) -> dict[int, bool] | None:
    """A success label stored per episode in meta/episodes (v3.0), if the column lives there; a null or
    a non-flag value is refused naming its episode."""
    files = _episode_meta_files(dataset)
    if not files or column not in read_schema_names(files[0]):
        return None
    table = pyarrow.concat_tables([read_parquet(f, columns=["episode_index", column]) for f in files])
    out: dict[int, bool] = {}
    for episode, value in zip(table.column("episode_index").to_pylist(), table.column(column), strict=True):
        if not value.is_valid:
            raise LeRobotFormatError(f"episode {episode}: meta/episodes column {column!r} is null")
        out[int(episode)] = bool(flags(pyarrow.array([value.as_py()], value.type), column, int(episode))[0])
    return out


def _episode_meta_files(dataset: LeRobotDataset) -> list[Path]:
    return sorted((dataset.root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))


def episode_metadata(dataset: LeRobotDataset, column: str) -> dict[int, object]:
    """episode_index -> the value of a per-episode column of meta/episodes (v3.0), such as recap/task;
    a dataset without the column is refused naming the columns it has."""
    files = _episode_meta_files(dataset)
    if not files:
        raise LeRobotFormatError(
            f"{dataset.source_id}: column {column!r} is read from meta/episodes/chunk-*/file-*.parquet "
            "(LeRobot v3.0), which this dataset does not have"
        )
    names = read_schema_names(files[0])
    if column not in names:
        raise LeRobotFormatError(
            f"{dataset.source_id}: meta/episodes has no column {column!r}; it has {names}"
        )
    table = pyarrow.concat_tables([read_parquet(f, columns=["episode_index", column]) for f in files])
    return dict(zip(table.column("episode_index").to_pylist(), table.column(column).to_pylist(), strict=True))


def _per_episode_columns(dataset: LeRobotDataset, options: LeRobotOptions) -> dict[str, dict[int, object]]:
    """The per-episode columns the options name (task, kind, collected_by, prompt), read once per
    dataset."""
    wanted = {"task": options.task_column, "kind": options.kind_column}
    wanted["collected_by"] = options.collected_by_column
    wanted["prompt"] = options.prompt_column
    return {field: episode_metadata(dataset, column) for field, column in wanted.items() if column}


def _episode_text(columns: dict[str, dict[int, object]], field: str, column: str | None, episode: int) -> str:
    value = columns[field].get(episode)
    if not isinstance(value, str) or not value:
        raise LeRobotFormatError(
            f"episode {episode}: meta/episodes column {column!r} = {value!r}: need a {field}"
        )
    return value


def _task_and_kind(
    options: LeRobotOptions, columns: dict[str, dict[int, object]], episode: int, prompt: str
) -> tuple[str, str]:
    """The episode's recap task name and kind: the fixed option, else its meta/episodes column."""
    task = options.task
    if task is None and options.task_column:
        task = _episode_text(columns, "task", options.task_column, episode)
        try:
            require_task_name(task)
        except ValueError as error:
            raise LeRobotFormatError(f"episode {episode}: column {options.task_column!r}: {error}") from None
    kind = options.kind or _episode_text(columns, "kind", options.kind_column, episode)
    if kind not in EPISODE_KINDS:
        raise LeRobotFormatError(
            f"episode {episode}: meta/episodes column {options.kind_column!r} = {kind!r}: not one of "
            f"{EPISODE_KINDS}"
        )
    if kind == "intervention" and not options.intervention_column:
        raise LeRobotFormatError(
            f"episode {episode} is an intervention episode: pass --intervention-column naming the per-frame "
            "flag of human-provided actions"
        )
    return task or task_name_from_text(prompt), kind


def _episode_prompt(
    dataset: LeRobotDataset,
    options: LeRobotOptions,
    per_episode: dict[str, dict[int, object]],
    episode: int,
    task_index: pyarrow.ChunkedArray,
) -> str:
    """The episode's prompt: its frames' one task (``task_index``), or with ``prompt_column`` the episode's
    meta/episodes entry, its frames then free to name several tasks (each listed in meta/tasks)."""
    task_indices = np.unique(task_index.to_numpy())
    unknown = [int(i) for i in task_indices if int(i) not in dataset.tasks]
    if options.prompt_column:
        if unknown:
            raise LeRobotFormatError(
                f"episode {episode}: column 'task_index' = {unknown}: not listed in meta/tasks"
            )
        return _episode_text(per_episode, "prompt", options.prompt_column, episode)
    if len(task_indices) != 1 or unknown:
        raise LeRobotFormatError(
            f"episode {episode}: column 'task_index' = {task_indices.tolist()}: "
            "need exactly one task listed in meta/tasks"
        )
    return dataset.tasks[int(task_indices[0])]


def _frame_level_success(rows: pyarrow.Table, column: str, episode: int) -> bool:
    """An episode succeeded when any of its frames says so; a null frame is refused, naming it (the only
    True frame set to null used to turn a success into a failure)."""
    values = rows.column(column)
    if values.null_count:
        frame = int(np.flatnonzero(pc.is_null(values).to_numpy(zero_copy_only=False))[0])
        raise LeRobotFormatError(f"episode {episode}: column {column!r} frame {frame} is null")
    return bool(flags(values, column, episode).any())


def _check_columns(
    dataset: LeRobotDataset, options: LeRobotOptions, names: list[str], video_keys: list[str]
) -> list[str]:
    """Fail early, naming what is missing and what is available; return image columns to import."""
    required = ["episode_index", "frame_index", "task_index", options.state_column, options.action_column]
    required += ["timestamp"] if video_keys else []  # video frames are matched to rows by timestamp
    if options.intervention_column:
        required.append(options.intervention_column)
    missing = [c for c in required if c not in names]
    if missing:
        raise LeRobotFormatError(
            f"{dataset.source_id}: data files lack column(s) {missing}; they have {names}"
        )
    if options.kind == "intervention" and not options.intervention_column:
        raise LeRobotFormatError(
            "kind 'intervention' needs --intervention-column naming the per-frame flag of human-provided "
            f"actions; the data files have {names}"
        )
    if options.success_column is None and options.assume_success is None:
        raise LeRobotFormatError(
            f"{dataset.source_id}: no success label: pass --success-column (e.g. next.success; the data "
            f"files have {names}) or --assume-success / --assume-failure for every episode"
        )
    features = dataset.info.get("features", {})
    image_columns = [n for n in names if features.get(n, {}).get("dtype") == "image"]
    cameras = [camera_name(c) for c in image_columns + video_keys]
    for feature, camera in zip(image_columns + video_keys, cameras, strict=True):
        if not re.fullmatch(CAMERA_PATTERN, camera):
            raise LeRobotFormatError(
                f"feature {feature!r}: its camera name {camera!r} must be letters, digits, '_' or '-', "
                "starting with a letter or digit"
            )
    clashing = sorted({c for c in cameras if cameras.count(c) > 1})
    if clashing:
        raise LeRobotFormatError(
            f"features {image_columns + video_keys} map to the same camera(s) {clashing}"
        )
    return image_columns


def _video_segments(dataset: LeRobotDataset, video_keys: list[str]) -> dict[tuple[int, str], VideoSegment]:
    """Where each episode's frames of each video feature are: v3.0 names file and start time per episode
    in meta/episodes; v2.1 has one file per episode, named by info.json's video_path."""
    if not video_keys:
        return {}
    if not dataset.version.startswith("v3."):
        return {
            (episode, key): lerobot_video.v21_segment(dataset.root, dataset.info, key, episode)
            for episode in dataset.episode_lengths
            for key in video_keys
        }
    files = sorted((dataset.root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
    names = read_schema_names(files[0])
    segments: dict[tuple[int, str], VideoSegment] = {}
    for key in video_keys:
        columns = lerobot_video.v3_location_columns(key)
        missing = [c for c in columns if c not in names]
        if missing:
            raise LeRobotFormatError(
                f"{files[0]}: video feature {key!r} needs column(s) {missing} in meta/episodes"
            )
        end = f"videos/{key}/to_timestamp"
        wanted = ["episode_index", *columns, *([end] if end in names else [])]
        table = pl.concat([pl.from_arrow(read_parquet(f, columns=wanted)) for f in files])
        for row in table.iter_rows(named=True):
            episode = int(row["episode_index"])
            null = next((c for c in columns if row[c] is None), None)
            if null is not None:
                raise LeRobotFormatError(
                    f"episode {episode}: camera {key!r}: meta/episodes column {null!r} is null"
                )
            chunk, file, start = (row[c] for c in columns)
            stop = None if row.get(end) is None else float(row[end])
            segments[(episode, key)] = lerobot_video.v3_segment(
                dataset.root, dataset.info, key, int(chunk), int(file), float(start), stop
            )
    return segments


def _video_frames(
    dataset: LeRobotDataset,
    segment: VideoSegment | None,
    episode: int,
    key: str,
    timestamps: pyarrow.ChunkedArray,
) -> list[bytes]:
    """PNG frames of one camera for one episode's rows, or an error naming episode, camera and why."""
    if segment is None:
        raise LeRobotFormatError(
            f"episode {episode}: camera {key!r}: no row in meta/episodes locates its video"
        )
    if timestamps.null_count:
        raise LeRobotFormatError(f"episode {episode}: column 'timestamp' has nulls")
    spec = dataset.info.get("features", {}).get(key, {})
    fps = (spec.get("info") or spec.get("video_info") or {}).get("video.fps") or dataset.info.get("fps")
    if not fps or float(fps) <= 0:
        raise LeRobotFormatError(f"camera {key!r}: meta/info.json gives no fps (video.fps or fps)")
    try:
        return lerobot_video.decode_at(segment, timestamps.to_numpy(), float(fps))
    except VideoDecodeError as error:
        raise LeRobotFormatError(f"episode {episode}: camera {key!r}: {error}") from None


def iter_episodes(dataset: LeRobotDataset, options: LeRobotOptions) -> Iterator[Episode]:
    """Episodes in file order, one at a time (an episode may continue into the next file)."""
    names = read_schema_names(dataset.data_files[0])
    video_keys = dataset.video_features if options.decode_videos else []
    image_columns = _check_columns(dataset, options, names, video_keys)
    episode_success = None
    if options.success_column is not None:
        episode_success = _episode_level_success(dataset, options.success_column)
        if episode_success is None and options.success_column not in names:
            raise LeRobotFormatError(
                f"success column {options.success_column!r} is in neither meta/episodes nor the data files "
                f"(data columns: {names})"
            )
    frame_success = options.success_column is not None and options.success_column in names
    if episode_success is not None and frame_success and options.success_source == "meta":
        frame_success = False  # chosen: the frames' labels are not read
    if episode_success is not None and frame_success and options.success_source == "frames":
        episode_success = None
    columns = ["episode_index", "frame_index", "task_index", options.state_column, options.action_column]
    columns += [c for c in (options.intervention_column,) if c]
    columns += [options.success_column] if frame_success else []
    columns += image_columns
    columns += ["timestamp"] if video_keys else []
    segments = _video_segments(dataset, video_keys)
    per_episode = _per_episode_columns(dataset, options)
    pending: dict[int, list[pyarrow.Table]] = {}
    seen: set[int] = set()
    for path in dataset.data_files:
        missing_columns = [c for c in columns if c not in read_schema_names(path)]
        if missing_columns:
            raise LeRobotFormatError(f"{path}: lacks column(s) {missing_columns}")
        table = read_parquet(path, columns=columns)
        episode_column = table.column("episode_index").to_numpy()
        for episode_index in dict.fromkeys(episode_column.tolist()):
            rows = table.filter(pc.equal(table.column("episode_index"), episode_index))
            pending.setdefault(int(episode_index), []).append(rows)
            parts = pending[int(episode_index)]
            have = sum(p.num_rows for p in parts)
            expected = dataset.episode_lengths.get(int(episode_index))
            if expected is None:
                raise LeRobotFormatError(f"episode {episode_index}: in {path.name} but not in meta/episodes")
            if have > expected:
                raise LeRobotFormatError(
                    f"episode {episode_index}: column 'frame_index' has {have} frames, meta/episodes says "
                    f"length {expected}"
                )
            if have == expected:
                del pending[int(episode_index)]
                seen.add(int(episode_index))
                yield _episode(
                    dataset,
                    options,
                    int(episode_index),
                    pyarrow.concat_tables(parts),
                    image_columns,
                    episode_success,
                    frame_success,
                    {key: segments.get((int(episode_index), key)) for key in video_keys},
                    per_episode,
                )
    if pending:
        first = next(iter(pending))
        raise LeRobotFormatError(
            f"episode {first}: column 'frame_index' has {sum(p.num_rows for p in pending[first])} frames, "
            f"meta/episodes says length {dataset.episode_lengths[first]}"
        )
    absent = sorted(set(dataset.episode_lengths) - seen)
    if absent:
        raise LeRobotFormatError(
            f"episode {absent[0]}: listed in meta/episodes (length {dataset.episode_lengths[absent[0]]}) "
            f"but has no rows in data/ ({len(absent)} such episode(s))"
        )


def _episode(
    dataset: LeRobotDataset,
    options: LeRobotOptions,
    episode_index: int,
    rows: pyarrow.Table,
    image_columns: list[str],
    episode_success: dict[int, bool] | None,
    frame_success: bool,
    videos: dict[str, VideoSegment | None],
    per_episode: dict[str, dict[int, object]],
) -> Episode:
    rows = rows.sort_by("frame_index")
    frames = rows.column("frame_index").to_numpy()
    expected = np.arange(len(frames))
    if not np.array_equal(frames, expected):
        bad = int(np.argmax(frames != expected))
        raise LeRobotFormatError(
            f"episode {episode_index}: column 'frame_index' = {frames[bad]} where {bad} was expected "
            "(frames must be exactly 0..T-1)"
        )
    prompt = _episode_prompt(dataset, options, per_episode, episode_index, rows.column("task_index"))
    task, kind = _task_and_kind(options, per_episode, episode_index, prompt)
    collected_by = per_episode.get("collected_by", {}).get(episode_index) or options.collected_by
    success = bool(options.assume_success)
    if frame_success:
        success = _frame_level_success(rows, options.success_column, episode_index)
    if episode_success is not None:
        if episode_index not in episode_success:
            raise LeRobotFormatError(f"episode {episode_index}: column {options.success_column!r} is missing")
        if frame_success and episode_success[episode_index] != success:
            raise LeRobotFormatError(
                f"episode {episode_index}: meta/episodes column {options.success_column!r} = "
                f"{episode_success[episode_index]}, but its frames say {success}; choose one with "
                "--success-from meta or --success-from frames"
            )
        success = episode_success[episode_index]
    is_correction = None
    if options.intervention_column:
        is_correction = flags(
            rows.column(options.intervention_column), options.intervention_column, episode_index
        )
    images = {camera_name(column): _image_frames(rows.column(column)) for column in image_columns}
    n = rows.num_rows
    features = dataset.info.get("features", {})
    matrices = {}
    for column in (options.state_column, options.action_column):
        spec = features.get(column) or {}
        matrix = _matrix(rows.column(column), n, column, episode_index, spec.get("dtype"))
        declared = spec.get("shape")
        if declared is not None and list(declared) != [matrix.shape[1]]:
            raise LeRobotFormatError(
                f"episode {episode_index}: column {column!r} has vectors of size {matrix.shape[1]}, "
                f"meta/info.json declares shape {list(declared)}"
            )
        _check_bounds(dataset, options, column, matrix, episode_index)
        matrices[column] = matrix
    observations, actions = matrices[options.state_column], matrices[options.action_column]
    for key, segment in videos.items():  # last: decoding is the slow part, after every cheap check
        images[camera_name(key)] = _video_frames(
            dataset, segment, episode_index, key, rows.column("timestamp")
        )
    return Episode(
        episode_id=stable_episode_id("lerobot", dataset.source_id, episode_index),
        task=task,
        prompt=prompt,
        kind=kind,
        success=success,
        observations=observations,
        actions=actions,
        is_correction=is_correction,
        iteration=options.iteration,
        collected_by=str(collected_by),
        robot=str(dataset.info.get("robot_type") or "unknown"),
        source=f"lerobot:{dataset.source_id}#{episode_index}",
        images=images or None,
    )
