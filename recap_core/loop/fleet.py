"""The fleet's drop folder: LeRobot datasets uploaded by robots, ingested into the iteration that finds them.

Each dataset is a folder in LeRobot format (v3.0 or v2.1) with a ``recap_import.json`` beside its
``meta/`` saying how to read it: {"task": ..., "kind": "demo|autonomous|intervention",
"success_column": ..., "assume_success": ..., "intervention_column": ...}. A dataset is ingested once,
into the first iteration that runs after it arrived; the ``fleet_imports`` table remembers which.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from recap_core.names import require_task_name
from recap_core.store import EpisodeStore
from recap_core.store.lerobot import LeRobotFormatError, LeRobotOptions, iter_episodes, open_dataset
from schemas.derived import FLEET_IMPORTS, FLEET_IMPORTS_ARROW_SCHEMA, FLEET_IMPORTS_KEY

IMPORT_FILE = "recap_import.json"
_OPTION_KEYS = {
    "task",
    "kind",
    "success_column",
    "assume_success",
    "intervention_column",
    "state_column",
    "action_column",
    "collected_by",
    "decode_videos",  # false: a dataset's video features are not decoded (states only)
    "max_abs_value",  # the bound on state and action values (LeRobotOptions)
    "success_source",  # "meta" or "frames", when both carry the success label and disagree
}


@dataclass(frozen=True)
class DroppedDataset:
    name: str
    path: Path
    task: str
    options: dict


def dropped_datasets(folder: str | Path) -> list[DroppedDataset]:
    """Every dataset in the drop folder, with its import options; a dataset without them is an error."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(p for p in folder.iterdir() if (p / "meta" / "info.json").is_file()):
        sidecar = path / IMPORT_FILE
        if not sidecar.is_file():
            raise LeRobotFormatError(
                f"dropped dataset {path.name}: no {IMPORT_FILE} saying its task and kind"
            )
        options = json.loads(sidecar.read_text())
        unknown = set(options) - _OPTION_KEYS
        if unknown or "task" not in options or "kind" not in options:
            raise LeRobotFormatError(
                f"dropped dataset {path.name}: {IMPORT_FILE} needs 'task' and 'kind'"
                + (f"; unknown keys {sorted(unknown)}" if unknown else "")
            )
        try:
            task = require_task_name(options["task"])
        except ValueError as error:
            raise LeRobotFormatError(f"dropped dataset {path.name}: {IMPORT_FILE}: {error}") from None
        out.append(DroppedDataset(path.name, path, task, options))
    return out


def imported_names(store: EpisodeStore) -> set[str]:
    if FLEET_IMPORTS not in store.table_names():
        return set()
    return set(store.read_derived(FLEET_IMPORTS)["dataset"].to_list())


def pending_datasets(
    store: EpisodeStore, folder: str | Path, task: str | None = None
) -> list[DroppedDataset]:
    done = imported_names(store)
    return [d for d in dropped_datasets(folder) if d.name not in done and (task is None or d.task == task)]


def ingest_pending(store: EpisodeStore, folder: str | Path, task: str, iteration: int) -> dict[str, int]:
    """Ingest the task's new datasets as data of ``iteration``; returns episodes added per dataset."""
    added: dict[str, int] = {}
    for dataset in pending_datasets(store, folder, task):
        options = LeRobotOptions(iteration=iteration, **dataset.options)
        episodes = list(iter_episodes(open_dataset(str(dataset.path)), options))
        # A crash between the ingest and its fleet_imports record leaves the episodes stored under an
        # earlier iteration: finish that import instead of re-ingesting them as a conflicting iteration.
        stored = dict(store.episodes(task=task).frame.select("episode_id", "iteration").iter_rows())
        new = [e for e in episodes if e.episode_id not in stored]
        if new:
            added[dataset.name] = len(store.add_episodes(new).added)
        iterations = {stored[e.episode_id] for e in episodes if e.episode_id in stored}
        record = pa.table(
            {
                "dataset": [dataset.name],
                "task": [task],
                "iteration": pa.array([min(iterations | ({iteration} if new else set()))], pa.int32()),
                "episodes": pa.array([len(episodes)], pa.int64()),
                "ingested_at": pa.array([datetime.now(UTC)], pa.timestamp("us", tz="UTC")),
            },
            schema=FLEET_IMPORTS_ARROW_SCHEMA,
        )
        store.write_derived(FLEET_IMPORTS, record, FLEET_IMPORTS_KEY)
    return added
