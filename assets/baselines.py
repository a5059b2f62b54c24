"""SFT, AWR and PPO baselines of one (task, iteration): pi^k's data, advantages and budget, from pi_pre;
plus pi^k itself at beta = 1, so guidance and conditioning can be told apart."""

from typing import TYPE_CHECKING

import dagster as dg

from assets import descriptions
from assets.advantages import advantages
from assets.iteration import PARTITIONS
from assets.k8s import training_tags
from assets.metadata import data_version, materialized, step_context
from assets.partitions import task_and_iteration
from assets.policy import policy
from assets.pretraining import policy_pretrained
from assets.resources import RecapResource
from assets.training_launcher import train_stage
from recap_core.extraction import BASELINES, RECAP_UNGUIDED

if TYPE_CHECKING:
    from recap_core.study.baselines import BaselineOutcome

LEDGER_SUMMARY = ("success_rate", "success_rate_se", "throughput_per_hour", "throughput_per_hour_se")

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
    description=descriptions.BASELINES,
)
def baselines(context: dg.AssetExecutionContext, recap: RecapResource) -> dg.MaterializeResult:
    # torch, the simulators and the Delta ledger: imported by the step
    from recap_core.study.baselines import audit_baselines, evaluate_recap_unguided, run_baselines

    task, iteration = task_and_iteration(context)
    ctx = step_context(context, recap)
    outcomes = run_baselines(
        ctx,
        task,
        iteration,
        train=lambda method: train_stage(context, ctx, "policy", task, iteration, method),
    )
    audit = audit_baselines(ctx.checkpoints, task, iteration, outcomes)
    unguided = evaluate_recap_unguided(ctx, task, iteration).row
    metadata: dict = {
        "methods": ", ".join(BASELINES),
        "table_versions": dg.MetadataValue.json(audit.value_versions),
        **{key: value for outcome in outcomes for key, value in _outcome_metadata(outcome).items()},
        "recap_gradient_steps": audit.reference.get("gradient_steps", -1),
        "weights_rule": audit.reference.get("weights_rule", "unknown"),
        f"{RECAP_UNGUIDED}_success_rate": unguided["success_rate"],
        f"{RECAP_UNGUIDED}_throughput_per_hour": unguided["throughput_per_hour"],
    }
    return materialized(
        ctx,
        metadata,
        [
            dg.AssetCheckResult(
                check_name="baselines_share_pi_k_data",
                passed=audit.same_data,
                metadata={
                    "pi_pre_sha256": audit.pretrained_sha256,
                    "value_table_versions": dg.MetadataValue.json(audit.value_versions),
                    "mismatched_data_or_budget": ", ".join(audit.mismatched) or "none",
                },
            )
        ],
        data_version(sorted(o.training.checkpoint.sha256 for o in outcomes), unguided["policy_sha256"]),
    )


def _outcome_metadata(outcome: "BaselineOutcome") -> dict:
    """One baseline's lineage and ledger row, its keys prefixed with the method."""
    row, training, method = outcome.evaluation.row, outcome.training, outcome.method
    metadata = {
        f"{method}_checkpoint_sha256": training.checkpoint.sha256,
        f"{method}_parent_sha256": training.parent.sha256 if training.parent else "none",
        f"{method}_table_versions": dg.MetadataValue.json(training.versions),
        f"{method}_steps": training.steps,
        **{f"{method}_{column}": row[column] for column in LEDGER_SUMMARY},
        f"{method}_ledger_version": outcome.evaluation.ledger_version,
        f"{method}_gradient_steps": training.extra.get("gradient_steps", -1),
    }
    if outcome.advantages_mean is not None:
        metadata[f"{method}_mean_advantage"] = outcome.advantages_mean
    if "ppo_reference" in training.extra:
        metadata["ppo_reference_policy"] = dg.MetadataValue.path(training.extra["ppo_reference"])
        metadata["ppo_reference_sha256"] = training.extra["ppo_reference_sha256"]
    return metadata
