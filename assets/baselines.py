"""SFT, AWR and PPO baselines of one (task, iteration): pi^k's data, advantages and budget, from pi_pre;
plus pi^k itself at beta = 1, so guidance and conditioning can be told apart."""

import dagster as dg

from assets.advantages import advantages
from assets.iteration import PARTITIONS
from assets.policy import policy
from assets.pretraining import policy_pretrained
from pipelines.distributed_training import train_stage
from pipelines.k8s import training_tags
from pipelines.partitions import task_and_iteration
from pipelines.resources import RecapResource
from recap_core.loop.artifacts import checkpoint_exists, iteration_path, pretrained_path, read_lineage
from recap_core.loop.baselines import evaluate_recap_unguided, run_baselines
from recap_core.loop.training_stages import iteration_value_versions
from recap_core.methods import BASELINES, RECAP_UNGUIDED
from recap_core.training import checkpoint_sha256

BASELINE_GROUP = "recap_baselines"


@dg.asset(
    op_tags=training_tags(),
    group_name=BASELINE_GROUP,
    partitions_def=PARTITIONS,
    deps=[advantages, policy_pretrained, policy],
    pool="training",
    kinds={"pytorch", "deltalake"},
    check_specs=[
        dg.AssetCheckSpec(
            "baselines_share_pi_k_data",
            asset="baselines",
            blocking=True,
            description="Every baseline started from pi_pre and trained on pi^k's table versions and steps "
            "with pi^k's gradient steps and weights rule; blocks the report otherwise.",
        )
    ],
    description="SFT, AWR and PPO (SPO trust region 0.01 against the data-collecting policy) finetuned "
    "from pi_pre on V^k's data and advantages with pi^k's gradient-step budget, and pi^k at beta = 1, "
    "evaluated on the held-out seeds into the ledger.",
)
def baselines(context: dg.AssetExecutionContext, recap: RecapResource) -> dg.MaterializeResult:
    task, iteration = task_and_iteration(context)
    root = recap.checkpoints()
    outcomes = run_baselines(
        recap.store(), recap.settings(), root, recap.ledger(), task, iteration, context.run_id,
        train=lambda method: train_stage(context, recap, "policy", task, iteration, method),
    )  # fmt: skip
    value_versions = iteration_value_versions(root, task, iteration)
    pretrained_sha = checkpoint_sha256(pretrained_path(root, "policy"))
    metadata: dict = {"table_versions": dg.MetadataValue.json(value_versions)}
    # The reference is what pi^k itself trained on when it exists (else what V^k trained on).
    pi_k = iteration_path(root, "policy", task, iteration)
    reference = (
        read_lineage(pi_k)
        if checkpoint_exists(pi_k)
        else read_lineage(iteration_path(root, "value", task, iteration))
    )
    data_keys = ("episodes", "steps")
    budget_keys = ("gradient_steps", "weights_rule")
    same_data, problems = True, []
    for outcome in outcomes:
        row, training = outcome.evaluation.row, outcome.training
        parent_sha = training.parent.sha256 if training.parent else "none"
        mismatch = any(training.versions.get(k) != reference["versions"].get(k) for k in data_keys)
        budget = any(training.extra.get(k) != reference.get(k) for k in budget_keys)
        if mismatch or budget or training.steps != reference["steps"] or parent_sha != pretrained_sha:
            same_data = False
            problems.append(outcome.method)
        metadata.update(
            {
                f"{outcome.method}_checkpoint_sha256": training.checkpoint.sha256,
                f"{outcome.method}_parent_sha256": parent_sha,
                f"{outcome.method}_table_versions": dg.MetadataValue.json(training.versions),
                f"{outcome.method}_steps": training.steps,
                f"{outcome.method}_success_rate": row["success_rate"],
                f"{outcome.method}_success_rate_se": row["success_rate_se"],
                f"{outcome.method}_throughput_per_hour": row["throughput_per_hour"],
                f"{outcome.method}_throughput_per_hour_se": row["throughput_per_hour_se"],
                f"{outcome.method}_ledger_version": outcome.evaluation.ledger_version,
            }
        )
        if outcome.advantages_mean is not None:
            metadata[f"{outcome.method}_mean_advantage"] = outcome.advantages_mean
        metadata[f"{outcome.method}_gradient_steps"] = training.extra.get("gradient_steps", -1)
        if "ppo_reference" in training.extra:
            metadata["ppo_reference_policy"] = dg.MetadataValue.path(training.extra["ppo_reference"])
            metadata["ppo_reference_sha256"] = training.extra["ppo_reference_sha256"]
    unguided = evaluate_recap_unguided(
        recap.settings(), root, recap.ledger(), task, iteration, context.run_id
    ).row
    metadata.update(
        {
            "recap_gradient_steps": reference.get("gradient_steps", -1),
            "weights_rule": reference.get("weights_rule", "unknown"),
            f"{RECAP_UNGUIDED}_success_rate": unguided["success_rate"],
            f"{RECAP_UNGUIDED}_throughput_per_hour": unguided["throughput_per_hour"],
        }
    )
    return dg.MaterializeResult(
        metadata={"methods": ", ".join(BASELINES), **metadata},
        check_results=[
            dg.AssetCheckResult(
                check_name="baselines_share_pi_k_data",
                passed=same_data,
                metadata={
                    "pi_pre_sha256": pretrained_sha,
                    "value_table_versions": dg.MetadataValue.json(value_versions),
                    "mismatched_data_or_budget": ", ".join(problems) or "none",
                },
            )
        ],
    )
