"""Evaluation of pi^k on held-out initial states: success rate, duration and throughput, into the ledger."""

import dagster as dg

from assets.iteration import ITERATION_GROUP, PARTITIONS
from assets.metadata import image
from assets.policy import policy
from pipelines.k8s import collector_tags
from pipelines.partitions import task_and_iteration
from pipelines.resources import RecapResource
from recap_core.ledger import newest_evaluations, read_ledger
from recap_core.loop.evaluation import evaluate_iteration
from recap_core.loop.plots import progress_per_iteration


def _progress_plots(ledger_uri: str, task: str, split: str, study: str) -> dict[str, bytes]:
    rows = newest_evaluations(read_ledger(ledger_uri).filter(task=task, study=study), split)
    success, throughput = {}, {}
    for method in sorted(set(rows["method"].to_list())):
        part = rows.filter(method=method).sort("iteration")
        iterations = part["iteration"].to_list()
        success[method] = (iterations, part["success_rate"].to_list(), part["success_rate_se"].to_list())
        throughput[method] = (
            iterations,
            part["throughput_per_hour"].to_list(),
            part["throughput_per_hour_se"].to_list(),
        )
    return {
        "success_per_iteration": progress_per_iteration(success, "success rate", f"{task}: success rate"),
        "throughput_per_iteration": progress_per_iteration(
            throughput, "successes per hour", f"{task}: throughput"
        ),
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
            "mean_duration_s": row["mean_duration_s"] if row["mean_duration_s"] is not None else float("nan"),
            "throughput_per_hour": row["throughput_per_hour"],
            "throughput_per_hour_se": row["throughput_per_hour_se"],
            "episodes": row["episodes"],
            "eval_seeds": row["eval_seeds"],
            "split": row["split"],
            "policy_sha256": row["policy_sha256"],
            "ledger_version": result.ledger_version,
            **{
                name: image(png, name)
                for name, png in _progress_plots(recap.ledger(), task, row["split"], recap.study).items()
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
