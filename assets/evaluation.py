"""Evaluation of pi^k on held-out initial states: success rate, duration and throughput, into the ledger."""

import dagster as dg

from assets.iteration import ITERATION_GROUP, PARTITIONS
from assets.metadata import image, optional_float
from assets.policy import policy
from pipelines.k8s import collector_tags
from pipelines.partitions import task_and_iteration
from pipelines.resources import RecapResource
from recap_core.loop.evaluation import evaluate_iteration
from recap_core.loop.report import task_progress_images

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
    task, iteration = task_and_iteration(context)
    result = evaluate_iteration(
        recap.store(), recap.settings(), recap.checkpoints(), recap.ledger(), task, iteration, context.run_id
    )
    if result is None:
        return dg.MaterializeResult(
            metadata={"evaluated": False, "reason": f"no simulator for task {task}: evaluate on the robot"},
            check_results=[
                dg.AssetCheckResult(
                    check_name="evaluated_on_held_out_seeds",
                    passed=False,
                    severity=dg.AssetCheckSeverity.WARN,
                    description=f"{task} has no simulator; its policy was not evaluated here",
                )
            ],
        )
    row = result.row
    return dg.MaterializeResult(
        metadata={
            "success_rate": row["success_rate"],
            "success_rate_se": row["success_rate_se"],
            "mean_duration_s": optional_float(row["mean_duration_s"]),
            "throughput_per_hour": row["throughput_per_hour"],
            "throughput_per_hour_se": row["throughput_per_hour_se"],
            "episodes": row["episodes"],
            "eval_seeds": row["eval_seeds"],
            "split": row["split"],
            "policy_sha256": row["policy_sha256"],
            "ledger_version": result.ledger_version,
            **{
                PROGRESS_METADATA[column]: image(png, PROGRESS_METADATA[column])
                for column, png in task_progress_images(
                    recap.ledger(), task, row["split"], recap.study
                ).items()
            },
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="evaluated_on_held_out_seeds",
                passed=result.held_out,
                metadata={"eval_seeds": row["eval_seeds"], "overlap_with_training": result.overlap},
            )
        ],
    )
