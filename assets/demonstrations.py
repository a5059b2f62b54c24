"""Demonstrations: the operator's episodes of every task (and LeRobot datasets dropped for ingest)."""

import dagster as dg

from assets.checks import table_check
from assets.iteration import PRETRAINING_GROUP
from assets.k8s import collector_tags
from assets.metadata import collection_metadata, data_version, materialized, step_context
from assets.partitions import register_partitions
from assets.resources import RecapResource


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
    from recap_core.loop.collection import collect_demonstrations  # the simulators: imported by the step

    ctx = step_context(context, recap)
    result = collect_demonstrations(ctx)
    register_partitions(context.instance, list(ctx.settings.tasks), [])
    return materialized(
        ctx,
        collection_metadata(result, "per_task"),
        [table_check(ctx.store, "episodes_schema_valid")],
        data_version(result.content_digest),
    )
