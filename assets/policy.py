"""pi^k: the advantage-conditioned policy finetuned FROM pi_pre on the task's labelled data so far."""

import dagster as dg

from assets.indicators import indicators
from assets.iteration import ITERATION_GROUP, PARTITIONS
from assets.metadata import training_metadata
from assets.pretraining import policy_pretrained
from pipelines.partitions import task_and_iteration
from pipelines.resources import RecapResource
from recap_core.loop.training_stages import train_iteration_policy


@dg.asset(
    group_name=ITERATION_GROUP,
    partitions_def=PARTITIONS,
    deps=[indicators, policy_pretrained],
    pool="training",
    kinds={"pytorch"},
    description="pi^k finetuned from pi_pre (never from pi^{k-1}); indicator dropped 30% of the time.",
)
def policy(context: dg.AssetExecutionContext, recap: RecapResource) -> dg.MaterializeResult:
    task, iteration = task_and_iteration(context)
    result = train_iteration_policy(recap.store(), recap.settings(), recap.checkpoints(), task, iteration)
    return dg.MaterializeResult(metadata=training_metadata(result, f"pi^{iteration} {task}"))
