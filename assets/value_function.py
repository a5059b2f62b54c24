"""V^k: the task's value function, finetuned FROM V_pre on the task's data of iterations <= k."""

import dagster as dg

from assets.experience import experience
from assets.iteration import ITERATION_GROUP, PARTITIONS
from assets.k8s import training_tags
from assets.metadata import data_version, materialized, step_context, training_metadata
from assets.partitions import task_and_iteration
from assets.pretraining import value_function_pretrained
from assets.resources import RecapResource
from assets.training_launcher import train_stage


@dg.asset(
    op_tags=training_tags(),
    group_name=ITERATION_GROUP,
    partitions_def=PARTITIONS,
    deps=[experience, value_function_pretrained],
    pool="training",
    kinds={"pytorch"},
    description="V^k finetuned from V_pre (never from V^{k-1}) on all of the task's data so far.",
)
def value_function(context: dg.AssetExecutionContext, recap: RecapResource) -> dg.MaterializeResult:
    task, iteration = task_and_iteration(context)
    ctx = step_context(context, recap)
    result = train_stage(context, ctx, "value", task, iteration)
    meta = training_metadata(result, f"V^{iteration} {task}")
    meta["max_iteration_read"] = max(result.episodes_per_iteration)
    return materialized(ctx, meta, version=data_version(result.checkpoint.sha256))
