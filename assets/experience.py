"""The data of iteration k: the fleet's new datasets, and on the simulated robot the rollouts (some
with human corrections) collected with pi^{k-1}. Iteration 0 has only the demonstrations."""

import dagster as dg

from assets.checks import table_check
from assets.collecting_policy import collecting_policy
from assets.demonstrations import demonstrations
from assets.iteration import ITERATION_GROUP, PARTITIONS
from assets.k8s import collector_tags
from assets.metadata import collection_metadata, data_version, materialized, step_context
from assets.partitions import next_iteration, task_and_iteration
from assets.resources import RecapResource


@dg.asset(
    op_tags=collector_tags(),
    group_name=ITERATION_GROUP,
    partitions_def=PARTITIONS,
    deps=[demonstrations, collecting_policy],
    kinds={"lance"},
    check_specs=[
        dg.AssetCheckSpec(
            "episodes_schema_valid",
            asset="experience",
            blocking=True,
            description="The stored episodes table satisfies its pandera schema; blocks training on it "
            "otherwise.",
        )
    ],
    description="Rollouts and interventions of pi^{k-1} (k >= 1) plus the fleet's dropped datasets.",
)
def experience(context: dg.AssetExecutionContext, recap: RecapResource) -> dg.MaterializeResult:
    # torch (the collecting policy) and the simulators: imported by the step
    from recap_core.loop.collection import collect_iteration_experience

    task, iteration = task_and_iteration(context)
    ctx = step_context(context, recap)
    # Newly dropped fleet data belongs to the task's next iteration; re-running an evaluated one must not
    # absorb it.
    drop_folder = recap.lerobot_drop_folder if iteration >= next_iteration(context.instance, task) else ""
    result = collect_iteration_experience(ctx, task, iteration, drop_folder or None)
    return materialized(
        ctx,
        collection_metadata(result, "per_kind"),
        [table_check(ctx.store, "episodes_schema_valid")],
        data_version(result.content_digest),
    )
