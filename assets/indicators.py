"""eps_task at the target percentile and I_t = 1[A_t > eps]; corrections forced True; all True at k = 0."""

import dagster as dg

from assets import descriptions
from assets.advantages import advantages
from assets.checks import corrections_check, fraction_check
from assets.iteration import ITERATION_GROUP, PARTITIONS
from assets.metadata import label_metadata
from pipelines.k8s import table_tags
from pipelines.partitions import task_and_iteration
from pipelines.resources import RecapResource
from recap_core.loop.labelling_stages import iteration_labels


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
    task, iteration = task_and_iteration(context)
    result = iteration_labels(recap.store(), recap.settings(), recap.checkpoints(), task, iteration)
    return dg.MaterializeResult(
        metadata=label_metadata(result),
        check_results=[
            fraction_check(result, "positive_fraction_on_target"),
            corrections_check(result, "corrections_labelled_positive"),
        ],
    )
