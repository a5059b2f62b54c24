"""The policy that collects an iteration's rollouts, as an asset of that iteration's partition.

Iteration k's experience is collected by pi^{k-1}, a product of another partition (k-1). Dagster draws
dependencies between partitions only through its built-in partition mappings, none of which says "the
previous iteration" for dynamic partitions, so the edge is made explicit: when pi^k is published, the
``policy`` step observes ``collecting_policy`` of partition "k+1|task" with pi^k's sha256 as its data
version (an observation: the asset is external, its content made by another partition's step), and
``experience`` depends on ``collecting_policy`` of its own partition. Re-materialising
iteration k with a different outcome therefore makes iteration k+1 (and everything downstream of it)
show as stale in the UI; a re-run that reproduces pi^k bit for bit changes nothing.
"""

from __future__ import annotations

import dagster as dg

from assets.iteration import ITERATION_GROUP, PARTITIONS
from assets.partitions import partition_key, register_partitions
from recap_core.checkpoints import CheckpointRef

COLLECTING_POLICY = dg.AssetKey("collecting_policy")

collecting_policy = dg.AssetSpec(
    COLLECTING_POLICY,
    partitions_def=PARTITIONS,
    group_name=ITERATION_GROUP,
    kinds={"pytorch"},
    description="pi^{k-1}, the policy that collects iteration k's rollouts (observed by iteration k-1's "
    "policy step, with its sha256 as the data version).",
)


def observe_collecting_policy(
    context: dg.AssetExecutionContext, task: str, iteration: int, policy: CheckpointRef
) -> None:
    """Record that pi^``iteration`` of ``task`` is the policy iteration + 1 collects with."""
    register_partitions(context.instance, [task], [iteration + 1])
    context.log_event(
        dg.AssetObservation(
            asset_key=COLLECTING_POLICY,
            partition=str(partition_key(task, iteration + 1)),
            metadata={
                "policy_checkpoint": dg.MetadataValue.path(policy.path),
                "policy_sha256": policy.sha256,
                "trained_in_iteration": iteration,
            },
            tags={"dagster/data_version": policy.sha256[:24]},
        )
    )
