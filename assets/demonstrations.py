"""Demonstrations: the operator's episodes of every task (and LeRobot datasets dropped for ingest)."""

import dagster as dg

from assets.checks import table_check
from assets.iteration import PRETRAINING_GROUP
from assets.metadata import collection_metadata
from pipelines.k8s import collector_tags
from pipelines.partitions import register_partitions
from pipelines.resources import RecapResource
from recap_core.loop.collection import collect_demonstrations


@dg.asset(
    op_tags=collector_tags(),
    group_name=PRETRAINING_GROUP,
    kinds={"lance"},
    check_specs=[
        dg.AssetCheckSpec(
            "episodes_schema_valid",
            asset="demonstrations",
            blocking=True,
            description="The stored episodes table satisfies its pandera schema; blocks pre-training on it "
            "otherwise.",
        )
    ],
    description="Teleoperation-like demonstrations of every configured task, in the episodes/steps tables.",
)
def demonstrations(context: dg.AssetExecutionContext, recap: RecapResource) -> dg.MaterializeResult:
    settings = recap.settings()
    store = recap.store()
    result = collect_demonstrations(store, settings)
    register_partitions(context.instance, list(settings.tasks), [])
    return dg.MaterializeResult(
        metadata=collection_metadata(result, "per_task"),
        check_results=[table_check(store, "episodes_schema_valid")],
    )
