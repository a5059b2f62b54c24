"""Partitions: one RECAP iteration of one task is one partition, "iteration|task" (e.g. "2|push-v3").

Both dimensions are dynamic: a new task appears when a fleet uploads its first episodes of it, and a new
iteration is added at run time (from the UI, `recap iterate`, the nightly schedule or the new-data
sensor). Dagster cannot derive a schedule from dynamic partitions, so the schedule and sensor add the
next iteration themselves (see pipelines/automation.py).
"""

from __future__ import annotations

import dagster as dg

TASKS = dg.DynamicPartitionsDefinition(name="task")
ITERATIONS = dg.DynamicPartitionsDefinition(name="iteration")
TASK_ITERATION = dg.MultiPartitionsDefinition({"task": TASKS, "iteration": ITERATIONS})


def partition_key(task: str, iteration: int) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"task": task, "iteration": str(iteration)})


def task_and_iteration(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> tuple[str, int]:
    """The (task, iteration) this materialisation is for."""
    keys = context.partition_key.keys_by_dimension
    return keys["task"], int(keys["iteration"])


def register_partitions(instance: dg.DagsterInstance, tasks: list[str], iterations: list[int]) -> None:
    """Add whatever task and iteration partitions are missing (idempotent)."""
    known_tasks = set(instance.get_dynamic_partitions(TASKS.name))
    new_tasks = [t for t in tasks if t not in known_tasks]
    if new_tasks:
        instance.add_dynamic_partitions(TASKS.name, new_tasks)
    known_iterations = set(instance.get_dynamic_partitions(ITERATIONS.name))
    new_iterations = [str(k) for k in sorted(iterations) if str(k) not in known_iterations]
    if new_iterations:
        instance.add_dynamic_partitions(ITERATIONS.name, new_iterations)
