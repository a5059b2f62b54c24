"""Evaluation of pi^k on held-out initial states: success rate, duration and throughput, into the ledger."""

import dagster as dg

from assets.iteration import ITERATION_GROUP, PARTITIONS
from assets.k8s import collector_tags
from assets.metadata import data_version, image, materialized, optional_float, step_context
from assets.partitions import task_and_iteration
from assets.policy import policy
from assets.resources import RecapResource

PROGRESS_METADATA = {
    "success_rate": "success_per_iteration",
    "throughput_per_hour": "throughput_per_iteration",
}


@dg.asset(
    op_tags=collector_tags(),
    group_name=ITERATION_GROUP,
    partitions_def=PARTITIONS,
    deps=[policy],
    kinds={"deltalake"},
    check_specs=[
        dg.AssetCheckSpec(
            "evaluated_on_held_out_seeds",
            asset="evaluation",
            description="Every evaluation seed is an evaluation seed and none was used for training data.",
        )
    ],
    description="pi^k on held-out seeds: success rate, mean duration, throughput (+- s.e.) into the ledger.",
)
def evaluation(context: dg.AssetExecutionContext, recap: RecapResource) -> dg.MaterializeResult:
    # torch, the simulators, the Delta ledger and matplotlib: imported by the step
    from recap_core.loop.evaluation import evaluate_iteration
    from recap_core.study.report import task_progress_images

    task, iteration = task_and_iteration(context)
    ctx = step_context(context, recap)
    result = evaluate_iteration(ctx, task, iteration)
    if result is None:
        return materialized(
            ctx,
            {"evaluated": False, "reason": f"no simulator for task {task}: evaluate on the robot"},
            [
                dg.AssetCheckResult(
                    check_name="evaluated_on_held_out_seeds",
                    passed=False,
                    severity=dg.AssetCheckSeverity.WARN,
                    description=f"{task} has no simulator; its policy was not evaluated here",
                )
            ],
        )
    row = result.row
    return materialized(
        ctx,
        {
            "success_rate": row["success_rate"],
            "success_rate_se": row["success_rate_se"],
            "mean_duration_s": optional_float(row["mean_duration_s"]),
            "throughput_per_hour": row["throughput_per_hour"],
            "throughput_per_hour_se": row["throughput_per_hour_se"],
            "episodes": row["episodes"],
            "eval_seeds": row["eval_seeds"],
            "split": row["split"],
            "policy_sha256": row["policy_sha256"],
            "beta": row["beta"],
            "ledger_version": result.ledger_version,
            **{
                PROGRESS_METADATA[column]: image(png, PROGRESS_METADATA[column])
                for column, png in task_progress_images(ctx.ledger_uri, task, row["split"], ctx.study).items()
            },
        },
        [
            dg.AssetCheckResult(
                check_name="evaluated_on_held_out_seeds",
                passed=result.held_out,
                metadata={"eval_seeds": row["eval_seeds"], "overlap_with_training": result.overlap},
            )
        ],
        data_version(row["policy_sha256"], row["beta"], row["split"], row["eval_seeds"], row["success_rate"]),
    )
