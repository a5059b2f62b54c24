"""``recap_import.json``: the import options a dataset carries beside its ``meta/``.

Robots write it into the fleet's drop folder, and ``recap export lerobot`` writes it beside every export,
so the dataset says itself how it is read: one task and kind for every episode (``task``, ``kind``), or
the meta/episodes columns holding each episode's (``task_column``, ``kind_column``), plus its success and
intervention columns. The fleet requires it; ``recap ingest lerobot`` reads it when present, with the
command line's options taking precedence.
"""

from __future__ import annotations

import json
from pathlib import Path

from recap_core.lerobot_v3.layout import IMPORT_FILE
from recap_core.names import require_task_name
from recap_core.store.lerobot import LeRobotDataset, LeRobotFormatError, episode_metadata

OPTION_KEYS = frozenset(
    {
        "task",
        "task_column",  # meta/episodes column naming each episode's recap task (ours: recap/task)
        "kind",
        "kind_column",  # meta/episodes column naming each episode's kind (ours: recap/kind)
        "success_column",
        "assume_success",
        "intervention_column",
        "state_column",
        "action_column",
        "collected_by",
        "collected_by_column",  # meta/episodes column naming each episode's collector
        "prompt_column",  # meta/episodes column of each episode's prompt (ours: recap/prompt)
        "decode_videos",  # false: a dataset's video features are not decoded (states only)
        "max_abs_value",  # the bound on state and action values (LeRobotOptions)
        "success_source",  # "meta" or "frames", when both carry the success label and disagree
    }
)
"""The LeRobotOptions fields a dataset may set for itself (not ``iteration``: the importer decides that)."""


def read_import_file(root: Path, where: str, require_task_and_kind: bool = False) -> dict | None:
    """The options in ``root/recap_import.json``, or None when there is none. An unreadable file, an
    unknown key, a bad task name or (``require_task_and_kind``, as the fleet needs) options that do not
    say each episode's task and kind are refused, ``where`` naming the dataset in the message."""
    path = Path(root) / IMPORT_FILE
    if not path.is_file():
        return None
    try:
        options = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise LeRobotFormatError(f"{where}: {IMPORT_FILE} is not valid JSON ({error})") from None
    if not isinstance(options, dict):
        raise LeRobotFormatError(f"{where}: {IMPORT_FILE} must be a JSON object of import options")
    unknown = sorted(set(options) - OPTION_KEYS)
    names_both = bool({"task", "task_column"} & set(options)) and bool({"kind", "kind_column"} & set(options))
    if require_task_and_kind and not names_both:
        raise LeRobotFormatError(
            f"{where}: {IMPORT_FILE} needs 'task' and 'kind' (or 'task_column' / 'kind_column' naming "
            "meta/episodes columns holding each episode's)" + (f"; unknown keys {unknown}" if unknown else "")
        )
    if unknown:
        raise LeRobotFormatError(
            f"{where}: {IMPORT_FILE} has unknown keys {unknown}; known: {sorted(OPTION_KEYS)}"
        )
    if "task" in options:
        try:
            require_task_name(options["task"])
        except ValueError as error:
            raise LeRobotFormatError(f"{where}: {IMPORT_FILE}: {error}") from None
    return options


def dataset_tasks(dataset: LeRobotDataset, options: dict) -> list[str]:
    """The recap tasks a dataset's episodes will be stored under: its one ``task``, or the distinct values
    of its ``task_column`` (each checked against the names' rule)."""
    if "task" in options:
        return [options["task"]]
    values = episode_metadata(dataset, options["task_column"])
    tasks: list[str] = []
    for episode, value in sorted(values.items()):
        try:
            task = require_task_name(value)
        except ValueError as error:
            raise LeRobotFormatError(
                f"{dataset.source_id}: episode {episode}: column {options['task_column']!r}: {error}"
            ) from None
        if task not in tasks:
            tasks.append(task)
    return tasks
