"""What `recap partitions list` shows and what `recap partitions remove` does, on the instance."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from assets.partitions import ITERATIONS, TASKS, evaluated_iterations, parse_partition_key
from assets.resources import RecapResource


def partitions_report(
    instance: dg.DagsterInstance, recap: RecapResource, runnable: Callable
) -> dict[str, object]:
    """Iterations registered, and per task partition: its evaluated iterations and its next iteration
    (None when the schedule skips it, with why)."""
    tasks = instance.get_dynamic_partitions(TASKS.name)
    plan, skipped = runnable(instance, recap, tasks)
    evaluated = evaluated_iterations(instance)
    return {
        "iterations": sorted(instance.get_dynamic_partitions(ITERATIONS.name), key=int),
        "tasks": {
            task: {
                "evaluated": sorted(evaluated.get(task, ())),
                "next": plan.get(task),
                "skipped": skipped.get(task),
            }
            for task in sorted(tasks)
        },
    }


def _materialised(instance: dg.DagsterInstance, task: str | None, iteration: int | None) -> list[str]:
    """The materialised "iteration|task" keys of any asset that this task or iteration would orphan."""
    found = []
    for key in instance.get_asset_keys():
        for partition in instance.get_materialized_partitions(key):
            parsed = parse_partition_key(str(partition))
            if parsed and (parsed[0] == task or parsed[1] == iteration):
                found.append(f"{key.to_user_string()} {partition}")
    return sorted(found)


def remove_dynamic_partition(
    instance: dg.DagsterInstance, task: str | None = None, iteration: int | None = None, force: bool = False
) -> str:
    """Delete one task or iteration partition key; refuse an unknown one, and one whose partitions hold
    materialisations unless ``force``."""
    definition, key = (TASKS.name, task) if task is not None else (ITERATIONS.name, str(iteration))
    if key not in instance.get_dynamic_partitions(definition):
        raise ValueError(f"no {definition} partition {key!r}; `recap partitions list` shows them")
    materialised = _materialised(instance, task, iteration)
    if materialised and not force:
        raise ValueError(
            f"{definition} partition {key!r} has materialisations ({', '.join(materialised[:3])}"
            f"{', ...' if len(materialised) > 3 else ''}): pass --force to remove it anyway"
        )
    instance.delete_dynamic_partition(definition, key)
    return f"{definition}={key}"
