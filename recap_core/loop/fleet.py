"""The fleet's drop folder: LeRobot datasets uploaded by robots, ingested into the iteration that finds them.

Each dataset is a folder in LeRobot format (v3.0 or v2.1) with a ``recap_import.json`` beside its
``meta/`` saying how to read it (``recap_core.store.lerobot_sidecar``): {"task": ..., "kind":
"demo|autonomous|intervention", "success_column": ..., "assume_success": ..., "intervention_column":
...}, or, for a dataset of several tasks or kinds (an export, a robot's batch of autonomous and
intervention episodes), "task_column" / "kind_column" naming the meta/episodes columns that hold each
episode's. A dataset is ingested once per task, into the first iteration of that task that runs after it
arrived; the ``fleet_imports`` table remembers which (a row per dataset, or per task of a dataset of
several: ``import_id``). Hidden folders (a name starting with ".") are
skipped: writers stage a dataset under a hidden name and rename it into place when it is complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from recap_core.lerobot_v3.layout import IMPORT_FILE
from recap_core.store import EpisodeStore
from recap_core.store.lerobot import LeRobotFormatError, LeRobotOptions, iter_episodes, open_dataset
from recap_core.store.lerobot_sidecar import dataset_tasks, read_import_file
from schemas.derived import FLEET_IMPORTS, FLEET_IMPORTS_ARROW_SCHEMA, FLEET_IMPORTS_KEY


@dataclass(frozen=True)
class DroppedDataset:
    name: str
    path: Path
    tasks: tuple[str, ...]  # the recap tasks its episodes belong to (one, unless it has a task_column)
    options: dict


def is_dataset_folder(path: Path) -> bool:
    """A complete dataset: not hidden (a writer's staging folder is) and with its meta/info.json."""
    return not path.name.startswith(".") and (path / "meta" / "info.json").is_file()


def dropped_datasets(folder: str | Path) -> list[DroppedDataset]:
    """Every dataset in the drop folder, with its import options; a dataset without them is an error."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(p for p in folder.iterdir() if is_dataset_folder(p)):
        where = f"dropped dataset {path.name}"
        options = read_import_file(path, where, require_task_and_kind=True)
        if options is None:
            raise LeRobotFormatError(f"{where}: no {IMPORT_FILE} saying its task and kind")
        tasks = [options["task"]] if "task" in options else dataset_tasks(open_dataset(str(path)), options)
        out.append(DroppedDataset(path.name, path, tuple(tasks), options))
    return out


def import_id(dataset: DroppedDataset, task: str) -> str:
    """The ``fleet_imports`` key of one task's import of a dataset: its name, or ``<name>/<task>`` for a
    dataset of several tasks (a folder name holds no "/"), so the table keeps its (dataset) key."""
    return dataset.name if dataset.tasks == (task,) else f"{dataset.name}/{task}"


def imported(store: EpisodeStore) -> set[str]:
    """The import ids (``import_id``) already ingested."""
    if FLEET_IMPORTS not in store.table_names():
        return set()
    return set(store.read_derived(FLEET_IMPORTS)["dataset"].to_list())


def pending_datasets(
    store: EpisodeStore, folder: str | Path, task: str | None = None
) -> list[DroppedDataset]:
    """Datasets with episodes of a task (``task``, or any) that no iteration of it has ingested yet."""
    done = imported(store)
    return [
        d
        for d in dropped_datasets(folder)
        if any(import_id(d, t) not in done and (task is None or t == task) for t in d.tasks)
    ]


def ingest_pending(store: EpisodeStore, folder: str | Path, task: str, iteration: int) -> dict[str, int]:
    """Ingest the task's episodes of new datasets as data of ``iteration``; returns episodes added per
    dataset (a dataset of several tasks contributes only this task's episodes)."""
    added: dict[str, int] = {}
    for dataset in pending_datasets(store, folder, task):
        options = LeRobotOptions(iteration=iteration, **dataset.options)
        episodes = [e for e in iter_episodes(open_dataset(str(dataset.path)), options) if e.task == task]
        # A crash between the ingest and its fleet_imports record leaves the episodes stored under an
        # earlier iteration: finish that import instead of re-ingesting them as a conflicting iteration.
        stored = dict(store.episodes(task=task).frame.select("episode_id", "iteration").iter_rows())
        new = [e for e in episodes if e.episode_id not in stored]
        if new:
            added[dataset.name] = len(store.add_episodes(new).added)
        iterations = {stored[e.episode_id] for e in episodes if e.episode_id in stored}
        record = pa.table(
            {
                "dataset": [import_id(dataset, task)],
                "task": [task],
                "iteration": pa.array([min(iterations | ({iteration} if new else set()))], pa.int32()),
                "episodes": pa.array([len(episodes)], pa.int64()),
                "ingested_at": pa.array([datetime.now(UTC)], pa.timestamp("us", tz="UTC")),
            },
            schema=FLEET_IMPORTS_ARROW_SCHEMA,
        )
        store.write_derived(FLEET_IMPORTS, record, FLEET_IMPORTS_KEY)
    return added
