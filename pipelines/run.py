"""`recap run`: pre-training and K RECAP iterations, materialised into the persistent Dagster instance.

Everything runs in-process through ``dagster.materialize`` against $DAGSTER_HOME, so every run, its
lineage metadata, plots and checks are then visible in `dagster dev` exactly as if launched from the UI.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import dagster as dg
import polars as pl

from pipelines.definitions import ALL_ASSETS
from pipelines.partitions import partition_key, register_partitions
from pipelines.recovery import owner_tags
from pipelines.resources import RecapResource
from recap_core.ledger import read_ledger

PRETRAINING = dg.AssetSelection.groups("pretraining")
# Progress lines are ours; Dagster's per-event log stays in the instance (and the UI), not the terminal.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
ITERATION = dg.AssetSelection.groups("recap_iteration")


def require_known_tasks(recap: RecapResource, tasks: Sequence[str]) -> None:
    """Refuse unknown task names before anything is registered or run.

    A task partition, once added, stays in the asset graph and the nightly schedule requests it every
    night; a typo must therefore never get that far. A task is known if it is simulated or has episodes
    in the store (a fleet task).
    """
    from recap_core.sim.tasks import task_names

    simulated = set(task_names())
    unknown = [t for t in tasks if t not in simulated]
    if not unknown:
        return
    stored = set(recap.store().episodes().frame["task"].unique().to_list())
    unknown = [t for t in unknown if t not in stored]
    if unknown:
        fleet = f"; tasks with stored episodes: {', '.join(sorted(stored))}" if stored else ""
        raise ValueError(
            f"unknown task {', '.join(repr(t) for t in unknown)}; simulated tasks: "
            f"{', '.join(sorted(simulated))}{fleet}"
        )


def add_iteration_partition(
    recap: RecapResource, instance: dg.DagsterInstance, task: str, iteration: int
) -> dg.MultiPartitionKey:
    """Check the task name and the iteration, then add the "iteration|task" partition if it is new."""
    if iteration < 0:
        raise ValueError(f"iteration must be >= 0, got {iteration}")
    require_known_tasks(recap, [task])
    register_partitions(instance, [task], [iteration])
    return partition_key(task, iteration)


def materialize_pretraining(recap: RecapResource, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        ALL_ASSETS,
        selection=PRETRAINING,
        instance=instance,
        resources={"recap": recap},
        run_config=QUIET,
        tags=owner_tags(),
    )


def materialize_iteration(
    recap: RecapResource,
    instance: dg.DagsterInstance,
    task: str,
    iteration: int,
    selection: dg.AssetSelection = ITERATION,
    trigger: str = "recap-run",
) -> dg.ExecuteInProcessResult:
    """One (task, iteration) partition of ``selection`` (the RECAP iteration, optionally with more)."""
    add_iteration_partition(recap, instance, task, iteration)
    return dg.materialize(
        ALL_ASSETS,
        selection=selection,
        instance=instance,
        resources={"recap": recap},
        partition_key=str(partition_key(task, iteration)),
        tags={"recap/trigger": trigger, **owner_tags()},
        run_config=QUIET,
    )


def run_loop(
    recap: RecapResource,
    instance: dg.DagsterInstance,
    iterations: int,
    log: Callable[[str], None] = print,
) -> pl.DataFrame:
    """Pre-train, then iterations 0..K for every task (iteration-major, as Algorithm 1 runs them)."""
    tasks = list(recap.settings().tasks)
    require_known_tasks(recap, tasks)
    register_partitions(instance, tasks, list(range(iterations + 1)))
    start = time.monotonic()
    log(f"pre-training on demonstrations of {', '.join(tasks)} (preset {recap.preset})")
    materialize_pretraining(recap, instance)
    log(f"  done in {time.monotonic() - start:.0f}s")
    for iteration in range(iterations + 1):
        for task in tasks:
            began = time.monotonic()
            materialize_iteration(recap, instance, task, iteration)
            log(f"iteration {iteration} of {task}: {time.monotonic() - began:.0f}s")
    log(f"total {time.monotonic() - start:.0f}s")
    return summary_table(recap.ledger(), tasks, "recap")


def summary_table(ledger_uri: str, tasks: Sequence[str], method: str | None = None) -> pl.DataFrame:
    """Success rate and throughput (+- s.e.) per task and iteration, newest evaluation of each."""
    rows = read_ledger(ledger_uri).filter(pl.col("task").is_in(list(tasks)))
    if method is not None:
        rows = rows.filter(method=method)
    return (
        rows.sort("evaluated_at")
        .group_by("task", "iteration", "method")
        .last()
        .sort("task", "iteration", "method")
        .select(
            "task",
            "iteration",
            "method",
            "episodes",
            (pl.col("success_rate") * 100).round(1).alias("success_%"),
            (pl.col("success_rate_se") * 100).round(1).alias("se_%"),
            pl.col("mean_duration_s").round(2),
            pl.col("throughput_per_hour").round(1).alias("successes_per_hour"),
            pl.col("throughput_per_hour_se").round(1).alias("se_per_hour"),
        )
    )
