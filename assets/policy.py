"""pi^k: the advantage-conditioned policy finetuned FROM pi_pre on the task's labelled data so far."""

import dagster as dg

from assets import descriptions
from assets.indicators import indicators
from assets.iteration import ITERATION_GROUP, PARTITIONS
from assets.metadata import training_metadata
from assets.pretraining import policy_pretrained
from pipelines.distributed_training import train_stage
from pipelines.k8s import training_tags
from pipelines.partitions import task_and_iteration
from pipelines.resources import RecapResource


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
    result = train_stage(context, recap, "policy", task, iteration)
    return dg.MaterializeResult(metadata=training_metadata(result, f"pi^{iteration} {task}"))
