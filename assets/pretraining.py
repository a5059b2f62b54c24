"""Pre-training: V_pre and pi_pre on all demonstrations, with the pre-training indicators between them."""

import dagster as dg

from assets import descriptions
from assets.checks import fraction_check
from assets.demonstrations import demonstrations
from assets.iteration import PRETRAINING_GROUP
from assets.k8s import table_tags, training_tags
from assets.metadata import (
    data_version,
    label_metadata,
    label_version,
    materialized,
    step_context,
    training_metadata,
)
from assets.resources import RecapResource
from assets.training_launcher import train_stage


@dg.asset(
    op_tags=training_tags(),
    group_name=PRETRAINING_GROUP,
    deps=[demonstrations],
    pool="training",
    kinds={"pytorch"},
    description=descriptions.VALUE_PRETRAINED,
)
def value_function_pretrained(
    context: dg.AssetExecutionContext, recap: RecapResource
) -> dg.MaterializeResult:
    ctx = step_context(context, recap)
    result = train_stage(context, ctx, "value_pretrained")
    return materialized(
        ctx, training_metadata(result, "V_pre"), version=data_version(result.checkpoint.sha256)
    )


@dg.asset(
    op_tags=table_tags(),
    group_name=PRETRAINING_GROUP,
    deps=[value_function_pretrained],
    kinds={"lance"},
    check_specs=[
        dg.AssetCheckSpec(
            "positive_fraction_on_target",
            asset="pretraining_indicators",
            description=descriptions.PRETRAINING_FRACTION_CHECK,
        )
    ],
    description=descriptions.PRETRAINING_INDICATORS,
)
def pretraining_indicators(context: dg.AssetExecutionContext, recap: RecapResource) -> dg.MaterializeResult:
    from recap_core.loop.labelling_stages import pretraining_labels  # torch: imported by the step

    ctx = step_context(context, recap)
    result = pretraining_labels(ctx)
    return materialized(
        ctx,
        label_metadata(result),
        [fraction_check(result, "positive_fraction_on_target")],
        label_version(result),
    )


@dg.asset(
    op_tags=training_tags(),
    group_name=PRETRAINING_GROUP,
    deps=[pretraining_indicators],
    pool="training",
    kinds={"pytorch"},
    description="pi_pre: the advantage-conditioned flow-matching action-chunk policy on all demos.",
)
def policy_pretrained(context: dg.AssetExecutionContext, recap: RecapResource) -> dg.MaterializeResult:
    ctx = step_context(context, recap)
    result = train_stage(context, ctx, "policy_pretrained")
    return materialized(
        ctx, training_metadata(result, "pi_pre"), version=data_version(result.checkpoint.sha256)
    )
