"""pi^k: the advantage-conditioned policy finetuned FROM pi_pre on the task's labelled data so far."""

import dagster as dg

from assets import descriptions
from assets.collecting_policy import observe_collecting_policy
from assets.indicators import indicators
from assets.iteration import ITERATION_GROUP, PARTITIONS
from assets.k8s import training_tags
from assets.metadata import data_version, materialized, step_context, training_metadata
from assets.partitions import task_and_iteration
from assets.pretraining import policy_pretrained
from assets.resources import RecapResource
from assets.training_launcher import train_stage


@dg.asset(
    op_tags=training_tags(),
    group_name=ITERATION_GROUP,
    partitions_def=PARTITIONS,
    deps=[indicators, policy_pretrained],
    pool="training",
    kinds={"pytorch"},
    description=descriptions.POLICY,
)
def policy(context: dg.AssetExecutionContext, recap: RecapResource) -> dg.MaterializeResult:
    task, iteration = task_and_iteration(context)
    ctx = step_context(context, recap)
    result = train_stage(context, ctx, "policy", task, iteration)
    observe_collecting_policy(context, task, iteration, result.checkpoint)
    return materialized(
        ctx,
        training_metadata(result, f"pi^{iteration} {task}"),
        version=data_version(result.checkpoint.sha256),
    )
