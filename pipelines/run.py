"""`recap run`: pre-training and K RECAP iterations, materialised into the persistent Dagster instance.

Everything runs in-process as the code location's named jobs against $DAGSTER_HOME, so every run, its
lineage metadata, plots and checks are then visible in `recap ui` exactly as if launched there.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence

import dagster as dg
import polars as pl
from dagster._core.definitions.job_base import InMemoryJob
from dagster._core.definitions.repository_definition import SINGLETON_REPOSITORY_NAME
from dagster._core.execution.api import JobExecutionResult, create_execution_plan, execute_run
from dagster._core.execution.execute_in_process import merge_run_tags
from dagster._core.remote_origin import (
    ManagedGrpcPythonEnvCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from assets.partitions import partition_key, register_partitions
from assets.resources import RecapResource
from pipelines.definitions import ALL_ASSETS, CODE_LOCATION, DEFINITIONS_MODULE
from pipelines.jobs import ITERATION_JOB, JOBS, PRETRAINING_JOB
from pipelines.progress import close_progress, stage_progress
from pipelines.recovery import owner_tags
from pipelines.ui import WORKSPACE
from recap_core.ledger import newest_evaluations, read_ledger
from recap_core.locations import DEFAULT_STUDY
from recap_core.loop.known_tasks import require_known_tasks as require_known
from recap_core.loop.known_tasks import tasks_in_store


# Progress bars are ours; Dagster's per-event log stays in the instance (and the UI), not the terminal:
# a failed step is reported by the CLI on one line (its stack trace too, with --debug / RECAP_DEBUG=1).
def console_logging() -> dict:
    debugging = os.environ.get("RECAP_DEBUG", "") not in ("", "0")
    return {"console": {"config": {"log_level": "WARNING" if debugging else "CRITICAL"}}}


def require_known_tasks(recap: RecapResource, tasks: Sequence[str]) -> None:
    """Refuse unknown task names before anything is registered or run.

    A task partition, once added, stays in the asset graph; a typo must therefore never get that far.
    A task is known if it is simulated or has episodes in the store (a fleet task).
    """
    require_known(tasks, tasks_in_store(recap.store().uri))


def add_iteration_partition(
    recap: RecapResource, instance: dg.DagsterInstance, task: str, iteration: int
) -> dg.MultiPartitionKey:
    """Check the task name and the iteration's order, then add the "iteration|task" partition if new."""
    require_known_tasks(recap, [task])
    recap.checkpoint_layout().require_iteration_in_order(task, iteration)
    register_partitions(instance, [task], [iteration])
    return partition_key(task, iteration)


def execute_job(
    recap: RecapResource,
    instance: dg.DagsterInstance,
    job_name: str,
    label: str,
    *,
    partition_key: str | None = None,
    tags: dict[str, str] | None = None,
    op_config: dict | None = None,
) -> JobExecutionResult:
    """Run one of the code location's named jobs in this process, against ``instance``.

    The run carries the job's name (``recap_iteration``, not an anonymous asset job) and the code
    location's origin, so the UI lists it in the job's Runs tab and the timeline beside the runs
    launched there and the schedule's, and can re-execute it; ``recap`` replaces the environment's
    resource. The steps run in this process, one after another (the in-process executor).
    """
    definitions = dg.Definitions(
        assets=ALL_ASSETS,
        jobs=JOBS,
        resources={"recap": recap},
        loggers={"console": dg.colored_console_logger, "progress": stage_progress},
        executor=dg.in_process_executor,
    )
    job_def = definitions.resolve_job_def(job_name)
    job = InMemoryJob(job_def)
    progress = {"config": {"label": label, "total": len(job_def.graph.node_names())}}
    run_config = {"loggers": {**console_logging(), "progress": progress}, **(op_config or {})}
    run_tags = merge_run_tags(
        job_def,
        partition_key,
        {**(tags or {}), "recap/study": recap.study, **owner_tags()},
        None,
        instance,
        run_config,
    )
    run_id = str(uuid.uuid4())  # chosen here so the progress bar of exactly this run can be closed
    try:
        plan = create_execution_plan(
            job, run_config=run_config, instance_ref=instance.get_ref(), tags=run_tags
        )
        run = instance.create_run_for_job(
            job_def=job_def,
            execution_plan=plan,
            run_id=run_id,
            run_config=run_config,
            tags=run_tags,
            remote_job_origin=code_location_job_origin(job_name),
        )
        return execute_run(job, run, instance, raise_on_error=True)
    finally:
        close_progress(run_id)


def code_location_job_origin(job_name: str) -> RemoteJobOrigin:
    """Where the UI finds ``job_name``: the workspace's python_module location "recap" (workspace.yaml)."""
    target = LoadableTargetOrigin(
        executable_path=sys.executable,
        module_name=DEFINITIONS_MODULE,
        working_directory=str(WORKSPACE.parent),
    )
    location = ManagedGrpcPythonEnvCodeLocationOrigin(target, CODE_LOCATION)
    return RemoteJobOrigin(RemoteRepositoryOrigin(location, SINGLETON_REPOSITORY_NAME), job_name)


def materialize_pretraining(recap: RecapResource, instance: dg.DagsterInstance) -> JobExecutionResult:
    return execute_job(recap, instance, PRETRAINING_JOB, "pre-training", tags={"recap/trigger": "recap-cli"})


def materialize_iteration(
    recap: RecapResource,
    instance: dg.DagsterInstance,
    task: str,
    iteration: int,
    job_name: str = ITERATION_JOB,
    trigger: str = "recap-run",
) -> JobExecutionResult:
    """One (task, iteration) partition of the named job (the RECAP iteration, optionally with baselines)."""
    add_iteration_partition(recap, instance, task, iteration)
    return execute_job(
        recap,
        instance,
        job_name,
        f"iteration {iteration} of {task}",
        partition_key=str(partition_key(task, iteration)),
        tags={"recap/trigger": trigger},
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
    for iteration in range(iterations + 1):
        for task in tasks:
            materialize_iteration(recap, instance, task, iteration)
    log(f"total {time.monotonic() - start:.0f}s")
    return summary_table(recap.ledger(), tasks, "recap", study=recap.study)


def summary_table(
    ledger_uri: str,
    tasks: Sequence[str],
    method: str | None = None,
    split: str = "test",
    study: str = DEFAULT_STUDY,
) -> pl.DataFrame:
    """Success rate and throughput (+- s.e.) per task and iteration, newest evaluation of each."""
    rows = read_ledger(ledger_uri).filter(pl.col("task").is_in(list(tasks)), study=study)
    if method is not None:
        rows = rows.filter(method=method)
    return (
        newest_evaluations(rows, split)
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
