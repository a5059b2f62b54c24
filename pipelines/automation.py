"""The nightly schedule and the new-fleet-data sensor.

Dagster cannot build a schedule from dynamic partitions, so both compute the partition themselves: the
next iteration is one past the newest iteration whose policies were all evaluated (or that newest one
again if it is unfinished), added as a dynamic partition before the runs are requested.
"""

import json
import os
from collections.abc import Iterable

import dagster as dg

from assets.partitions import ITERATIONS, TASKS, partition_key, register_partitions
from assets.resources import RecapResource
from pipelines.jobs import iteration_job
from recap_core.loop.fleet import pending_datasets

EVALUATION_KEY = dg.AssetKey("evaluation")
PRETRAINED_POLICY_KEY = dg.AssetKey("policy_pretrained")


def next_iteration(instance: dg.DagsterInstance, tasks: Iterable[str]) -> int:
    """The iteration tonight's run should materialise for ``tasks``: the oldest one not yet evaluated for
    all of them (an interrupted run may have registered later partitions that cannot run yet), else one
    past the newest."""
    known = sorted(int(k) for k in instance.get_dynamic_partitions(ITERATIONS.name))
    evaluated = instance.get_materialized_partitions(EVALUATION_KEY)
    for iteration in known:
        if not all(str(partition_key(task, iteration)) in evaluated for task in tasks):
            return iteration
    return known[-1] + 1 if known else 0


def _requests(tasks: list[str], iteration: int, reason: str) -> list[dg.RunRequest]:
    return [
        dg.RunRequest(
            run_key=f"{reason}:{task}:{iteration}",
            partition_key=partition_key(task, iteration),
            tags={"recap/trigger": reason},
        )
        for task in tasks
    ]


# When the nightly run starts (UTC); a site sets its own quiet hours with RECAP_NIGHTLY_CRON.
NIGHTLY_CRON = os.environ.get("RECAP_NIGHTLY_CRON", "0 2 * * *")


@dg.schedule(job=iteration_job, cron_schedule=NIGHTLY_CRON, execution_timezone="UTC", name="nightly_recap")
def nightly_recap(context: dg.ScheduleEvaluationContext, recap: RecapResource):
    """Every night: next iteration of every task (its experience stage ingests the fleet's drop folder)."""
    if context.instance.get_latest_materialization_event(PRETRAINED_POLICY_KEY) is None:
        return dg.SkipReason("pi_pre has not been materialised: run the pretraining job first")
    tasks = sorted(set(recap.settings().tasks) | set(context.instance.get_dynamic_partitions(TASKS.name)))
    iteration = next_iteration(context.instance, tasks)
    register_partitions(context.instance, tasks, [iteration])
    night = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return _requests(tasks, iteration, f"nightly-{night}")


@dg.sensor(job=iteration_job, minimum_interval_seconds=300, name="new_fleet_data")
def new_fleet_data(context: dg.SensorEvaluationContext, recap: RecapResource):
    """When robots drop new LeRobot datasets, add the next iteration and run it for their tasks."""
    if not recap.lerobot_drop_folder:
        return dg.SkipReason("no lerobot_drop_folder configured")
    seen = set(json.loads(context.cursor)) if context.cursor else set()
    new = [d for d in pending_datasets(recap.store(), recap.lerobot_drop_folder) if d.name not in seen]
    if not new:
        return dg.SkipReason("no new datasets in the drop folder")
    tasks = sorted({d.task for d in new})
    iteration = next_iteration(context.instance, tasks)
    return dg.SensorResult(
        run_requests=_requests(tasks, iteration, "fleet-" + "+".join(sorted(d.name for d in new))),
        dynamic_partitions_requests=[
            TASKS.build_add_request(
                [t for t in tasks if not context.instance.has_dynamic_partition(TASKS.name, t)]
            ),
            ITERATIONS.build_add_request([str(iteration)]),
        ],
        cursor=json.dumps(sorted(seen | {d.name for d in new})),
    )
