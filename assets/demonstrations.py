"""Demonstrations: the operator's episodes of every task (and LeRobot datasets dropped for ingest)."""

import dagster as dg

from assets.checks import table_check
from pipelines.partitions import TASKS
from pipelines.resources import RecapResource
from recap_core.loop.collection import collect_demonstrations


@dg.asset(
    group_name="pretraining",
    kinds={"lance"},
    check_specs=[dg.AssetCheckSpec("episodes_schema_valid", asset="demonstrations")],
    description="Teleoperation-like demonstrations of every configured task, in the episodes/steps tables.",
)
def demonstrations(context: dg.AssetExecutionContext, recap: RecapResource) -> dg.MaterializeResult:
    settings = recap.settings()
    store = recap.store()
    result = collect_demonstrations(store, settings)
    known = set(context.instance.get_dynamic_partitions(TASKS.name))
    new_tasks = [t for t in settings.tasks if t not in known]
    if new_tasks:
        context.instance.add_dynamic_partitions(TASKS.name, new_tasks)
    return dg.MaterializeResult(
        metadata={
            "added": result.added,
            "skipped_already_stored": result.skipped,
            "table_versions": dg.MetadataValue.json(result.versions),
            "per_task": dg.MetadataValue.json(result.per_task),
        },
        check_results=[table_check(store, "episodes_schema_valid")],
    )
