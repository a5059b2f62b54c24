"""Deployment of pi^k to the robots: the serving pointer moves only when the gate passes."""

import dagster as dg

from assets.evaluation import evaluation
from assets.iteration import ITERATION_GROUP, PARTITIONS
from assets.k8s import table_tags
from assets.metadata import data_version, materialized, step_context
from assets.partitions import task_and_iteration
from assets.resources import RecapResource


@dg.asset(
    op_tags=table_tags(),
    group_name=ITERATION_GROUP,
    partitions_def=PARTITIONS,
    deps=[evaluation],
    check_specs=[
        dg.AssetCheckSpec(
            "not_worse_than_deployed",
            asset="deployment",
            description="pi^k's held-out success is at least the deployed policy's minus the margin.",
        )
    ],
    description="Publishes pi^k to the task's serving pointer (what `recap serve --task` serves) when its "
    "evaluation is not worse than the deployed policy's by more than deploy_margin; `recap deploy "
    "rollback` returns to the previous version.",
)
def deployment(context: dg.AssetExecutionContext, recap: RecapResource) -> dg.MaterializeResult:
    from recap_core.loop.deployment import deploy_iteration  # the Delta ledger: imported by the step

    task, iteration = task_and_iteration(context)
    ctx = step_context(context, recap)
    outcome = deploy_iteration(ctx, task, iteration)
    decision, current = outcome.decision, outcome.current
    metadata = {
        "published": decision.publish,
        "reason": decision.reason,
        "candidate_success_rate": decision.candidate_success_rate,
        "deployed_success_rate": decision.deployed_success_rate,
        "margin": decision.margin,
        "serving_version": current.version if current else None,
        "serving_iteration": current.iteration if current else None,
        "serving_checkpoint": current.checkpoint if current else None,
    }
    already = decision.reason.startswith("already deployed")
    check = dg.AssetCheckResult(
        check_name="not_worse_than_deployed",
        passed=decision.publish or already,
        severity=dg.AssetCheckSeverity.WARN,
        description=decision.reason,
    )
    return materialized(
        ctx,
        metadata,
        [check],
        data_version(current.sha256 if current else "", current.version if current else 0),
    )
