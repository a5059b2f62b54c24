"""N-step advantages of the task's data under V^k, with a picture of V along a success and a failure."""

from typing import TYPE_CHECKING

import dagster as dg

from assets import descriptions
from assets.checks import value_rises_check
from assets.iteration import ITERATION_GROUP, PARTITIONS
from assets.k8s import table_tags
from assets.metadata import data_version, image, materialized, optional_float, step_context
from assets.partitions import task_and_iteration
from assets.resources import RecapResource
from assets.value_function import value_function

if TYPE_CHECKING:
    from recap_core.loop.results import AdvantageResult
    from recap_core.loop.value_diagnostics import HeldOutValueCheck


def held_out_metadata(check: "HeldOutValueCheck | None") -> dict:
    """V^k against V^{k-1} on this iteration's new episodes (recap_core/loop/value_diagnostics.py)."""
    if check is None:
        return {}
    return {
        "held_out/new_episodes": check.new_episodes,
        "held_out/mae_in_sample": check.mae_in_sample,
        "held_out/mae_previous_value_function": check.mae_held_out,
        "held_out/indicator_agreement": check.indicator_agreement,
        "held_out/chance_agreement": check.chance_agreement,
        "held_out/advantage_correlation": optional_float(check.advantage_correlation),
    }


def cross_fitting_metadata(result: "AdvantageResult") -> dict:
    """With cross-fitted values: V^k's own error beside the folds' and how many episodes each fold held."""
    if result.folds == 1:
        return {}
    return {
        "in_sample_value_return_mae": result.in_sample_return_mae,
        "episodes_per_fold": dg.MetadataValue.json(result.held_out_per_fold),
    }


@dg.asset(
    op_tags=table_tags(),
    group_name=ITERATION_GROUP,
    partitions_def=PARTITIONS,
    deps=[value_function],
    kinds={"lance"},
    check_specs=[
        dg.AssetCheckSpec(
            "value_rises_in_successes", asset="advantages", description=descriptions.VALUE_RISES_CHECK
        )
    ],
    description=descriptions.ADVANTAGES,
)
def advantages(context: dg.AssetExecutionContext, recap: RecapResource) -> dg.MaterializeResult:
    # torch and matplotlib: imported by the step, not when the code location loads
    from recap_core.loop.labelling_stages import iteration_advantages
    from recap_core.loop.plots import values_along_episodes

    task, iteration = task_and_iteration(context)
    ctx = step_context(context, recap)
    result = iteration_advantages(ctx, task, iteration)
    picture = values_along_episodes(result.diagnostics.curves, f"V^{iteration} along episodes of {task}")
    return materialized(
        ctx,
        {
            "lookahead": result.lookahead,
            "rows": result.steps,
            "advantages_table_version": result.table_version,
            "value_checkpoint_sha256": result.value_checkpoint.sha256,
            "table_versions": dg.MetadataValue.json(result.versions),
            "mean_advantage": result.mean_advantage,
            "mean_value_success": optional_float(result.mean_value_success),
            "mean_value_failure": optional_float(result.mean_value_failure),
            "value_return_mae": result.value_return_mae,
            "advantage_folds": result.folds,
            **cross_fitting_metadata(result),
            **held_out_metadata(result.held_out),
            "values_along_episodes": image(picture, "values along episodes"),
        },
        [value_rises_check(result.diagnostics, "value_rises_in_successes")],
        data_version(result.value_checkpoint.sha256, result.lookahead, result.steps, result.folds),
    )
