"""The nightly schedule and the new-fleet-data sensor.

Dagster cannot build a schedule from dynamic partitions, so both compute the partitions themselves: each
task's next iteration is one past its newest evaluated one (assets/partitions.py), added as a dynamic
partition before its run is requested. A tick never requests an evaluated partition, nor one whose run
is still queued or running (a tick that comes before the last one's run has ended: every minute in a
test, or after a night's backlog in production). A task partition that cannot run (a name outside the
names' rule, a typo added in the UI's launch dialog: neither simulated nor with stored episodes, or a
task without demonstrations for its iteration 0) is skipped with a warning that names it, and the other
tasks run.
"""

import json
import os
from collections.abc import Iterable

import dagster as dg

from assets.partitions import ITERATIONS, TASKS, next_iteration, partition_key, register_partitions
from assets.resources import RecapResource
from pipelines.jobs import iteration_job
from recap_core.loop.fleet import pending_datasets
from recap_core.sim.tasks import task_names
from schemas.names import NAME_RULE, is_valid_name

PRETRAINED_POLICY_KEY = dg.AssetKey("policy_pretrained")


def runnable_tasks(
    instance: dg.DagsterInstance, recap: RecapResource, tasks: Iterable[str]
) -> tuple[dict[str, int], dict[str, str]]:
    """Each runnable task's next iteration, and why each other task was skipped."""
    stored = recap.store().episodes().frame.select("task", "kind").unique()
    with_episodes = set(stored["task"].to_list())
    with_demos = set(stored.filter(kind="demo")["task"].to_list())
    simulated = set(task_names())
    plan: dict[str, int] = {}
    skipped: dict[str, str] = {}
    for task in sorted(set(tasks)):
        if not is_valid_name(task):
            skipped[task] = f"not a task name ({NAME_RULE})"
        elif task not in simulated and task not in with_episodes:
            skipped[task] = "neither a simulated task nor one with stored episodes"
        elif (iteration := next_iteration(instance, task)) == 0 and task not in with_demos:
            skipped[task] = "no demonstrations for its iteration 0: run the pretraining job with it"
        else:
            plan[task] = iteration
    return plan, skipped


IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def partitions_in_progress(instance: dg.DagsterInstance) -> dict[str, str]:
    """Partition key -> id of a run of the iteration job that has not ended yet (queued or running)."""
    runs = instance.get_runs(dg.RunsFilter(job_name=iteration_job.name, statuses=IN_PROGRESS))
    return {run.tags["dagster/partition"]: run.run_id for run in runs if "dagster/partition" in run.tags}


def without_runs_in_progress(
    instance: dg.DagsterInstance, plan: dict[str, int]
) -> tuple[dict[str, int], str]:
    """``plan`` without the partitions whose run has not ended; and what was left out, for the tick's log.
    Their tasks' next iteration is still the same one (it is not evaluated yet), so asking again would
    queue a second run of the same partition."""
    running = partitions_in_progress(instance)
    busy = {task: running[key] for task, it in plan.items() if (key := partition_key(task, it)) in running}
    note = "; ".join(
        f"{partition_key(t, plan[t])} is already queued or running (run {busy[t]})" for t in busy
    )
    return {task: it for task, it in plan.items() if task not in busy}, note


def _requests(plan: dict[str, int], reason: str) -> list[dg.RunRequest]:
    return [
        dg.RunRequest(
            run_key=f"{reason}:{task}:{iteration}",
            partition_key=partition_key(task, iteration),
            tags={"recap/trigger": reason},
        )
        for task, iteration in sorted(plan.items())
    ]


def _warn_skipped(context, skipped: dict[str, str]) -> str:
    message = "; ".join(f"task partition {task!r} skipped: {why}" for task, why in skipped.items())
    if message:
        context.log.warning(message)
    return message


# When the nightly run starts (UTC); a site sets its own quiet hours with RECAP_NIGHTLY_CRON.
NIGHTLY_CRON = os.environ.get("RECAP_NIGHTLY_CRON", "0 2 * * *")


@dg.schedule(job=iteration_job, cron_schedule=NIGHTLY_CRON, execution_timezone="UTC", name="nightly_recap")
def nightly_recap(context: dg.ScheduleEvaluationContext, recap: RecapResource):
    """Every night: each task's next iteration (its experience stage ingests the fleet's drop folder)."""
    if context.instance.get_latest_materialization_event(PRETRAINED_POLICY_KEY) is None:
        return dg.SkipReason("pi_pre has not been materialised: run the pretraining job first")
    tasks = set(recap.settings().tasks) | set(context.instance.get_dynamic_partitions(TASKS.name))
    plan, skipped = runnable_tasks(context.instance, recap, tasks)
    message = _warn_skipped(context, skipped)
    plan, busy = without_runs_in_progress(context.instance, plan)
    if busy:
        context.log.info(busy)
    if not plan:
        return dg.SkipReason("; ".join(m for m in (message, busy) if m) or "no task to run")
    for task, iteration in plan.items():
        register_partitions(context.instance, [task], [iteration])
    night = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return _requests(plan, f"nightly-{night}")


@dg.sensor(job=iteration_job, minimum_interval_seconds=300, name="new_fleet_data")
def new_fleet_data(context: dg.SensorEvaluationContext, recap: RecapResource):
    """When robots drop new LeRobot datasets, run the next iteration of each of their tasks."""
    if not recap.lerobot_drop_folder:
        return dg.SkipReason("no lerobot_drop_folder configured")
    seen = set(json.loads(context.cursor)) if context.cursor else set()
    new = [d for d in pending_datasets(recap.store(), recap.lerobot_drop_folder) if d.name not in seen]
    if not new:
        return dg.SkipReason("no new datasets in the drop folder")
    plan = {
        task: next_iteration(context.instance, task) for task in sorted({t for d in new for t in d.tasks})
    }
    # never a second run of a partition that is queued or running; the datasets stay pending (not yet
    # stored) and the task's next iteration ingests them
    plan, _ = without_runs_in_progress(context.instance, plan)
    names = "+".join(sorted(d.name for d in new))
    return dg.SensorResult(
        run_requests=_requests(plan, f"fleet-{names}"),
        dynamic_partitions_requests=[
            TASKS.build_add_request(
                [t for t in plan if not context.instance.has_dynamic_partition(TASKS.name, t)]
            ),
            ITERATIONS.build_add_request(
                sorted(
                    {str(k) for k in plan.values()}
                    - set(context.instance.get_dynamic_partitions(ITERATIONS.name))
                )
            ),
        ],
        cursor=json.dumps(sorted(seen | {d.name for d in new})),
    )
