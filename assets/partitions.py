"""Partitions: one RECAP iteration of one task is one partition, "iteration|task" (e.g. "2|push-v3").

Both dimensions are dynamic: a new task appears when a fleet uploads its first episodes of it, and a new
iteration is added at run time (from the UI, `recap iterate`, the nightly schedule or the new-data
sensor). Dagster cannot derive a schedule from dynamic partitions, so the schedule and sensor add the
next iteration themselves (see pipelines/automation.py). Each task advances on its own: its next
iteration is one past its newest evaluated one.
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


EVALUATION_KEY = dg.AssetKey("evaluation")


def parse_partition_key(key: str) -> tuple[str, int] | None:
    """(task, iteration) of a stored "iteration|task" key; None for a key that is not one."""
    iteration, _, task = key.partition("|")
    return (task, int(iteration)) if iteration.isdigit() and task else None


def evaluated_iterations(instance: dg.DagsterInstance) -> dict[str, set[int]]:
    """task -> the iterations whose evaluation has been materialised."""
    out: dict[str, set[int]] = {}
    for key in instance.get_materialized_partitions(EVALUATION_KEY):
        parsed = parse_partition_key(str(key))
        if parsed is not None:
            out.setdefault(parsed[0], set()).add(parsed[1])
    return out


def next_iteration(instance: dg.DagsterInstance, task: str) -> int:
    """The iteration ``task`` runs next: one past its newest evaluated iteration (0 when none is). Each
    task advances on its own, and an evaluated iteration is never the next one."""
    done = evaluated_iterations(instance).get(task)
    return max(done) + 1 if done else 0
