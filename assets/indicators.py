"""eps_task at the target percentile and I_t = 1[A_t > eps]; corrections forced True; all True at k = 0."""

import dagster as dg

from assets import descriptions
from assets.advantages import advantages
from assets.checks import corrections_check, fraction_check
from assets.iteration import ITERATION_GROUP, PARTITIONS
from assets.k8s import table_tags
from assets.metadata import label_metadata, label_version, materialized, step_context
from assets.partitions import task_and_iteration
from assets.resources import RecapResource


@dg.asset(
    op_tags=table_tags(),
    group_name=ITERATION_GROUP,
    partitions_def=PARTITIONS,
    deps=[advantages],
    kinds={"lance"},
    check_specs=[
        dg.AssetCheckSpec(
            "positive_fraction_on_target",
            asset="indicators",
            description=descriptions.FINETUNE_FRACTION_CHECK,
        ),
        dg.AssetCheckSpec(
            "corrections_labelled_positive",
            asset="indicators",
            blocking=True,
            description="Every step a human corrected is labelled positive; blocks pi^k otherwise.",
        ),
    ],
    description=descriptions.INDICATORS,
)
def indicators(context: dg.AssetExecutionContext, recap: RecapResource) -> dg.MaterializeResult:
    from recap_core.loop.labelling_stages import iteration_labels  # torch: imported by the step

    task, iteration = task_and_iteration(context)
    ctx = step_context(context, recap)
    result = iteration_labels(ctx, task, iteration)
    return materialized(
        ctx,
        label_metadata(result),
        [
            fraction_check(result, "positive_fraction_on_target"),
            corrections_check(result, "corrections_labelled_positive"),
        ],
        label_version(result),
    )
