"""N-step advantages of the task's data under V^k, with a picture of V along a success and a failure."""

import dagster as dg
import numpy as np
import polars as pl

from assets.checks import value_rises_check
from assets.iteration import ITERATION_GROUP, PARTITIONS
from assets.metadata import image
from assets.value_function import value_function
from pipelines.k8s import table_tags
from pipelines.partitions import task_and_iteration
from pipelines.resources import RecapResource
from recap_core.loop.labelling_stages import iteration_advantages
from recap_core.loop.labels import ADVANTAGES, partition_filter
from recap_core.loop.plots import values_along_episodes


def _example_curves(rows: pl.DataFrame, episodes: pl.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    curves = {}
    for label, success in (("success", True), ("failure", False)):
        candidates = episodes.filter(pl.col("success") == success).sort("length", descending=True)
        if candidates.height:
            episode_id = candidates["episode_id"][0]
            steps = rows.filter(pl.col("episode_id") == episode_id).sort("t")
            curves[f"{label} ({episode_id[:8]})"] = (
                steps["value"].to_numpy(),
                steps["normalised_return"].to_numpy(),
            )
    return curves


@dg.asset(
    op_tags=table_tags(),
    group_name=ITERATION_GROUP,
    partitions_def=PARTITIONS,
    deps=[value_function],
    kinds={"lance"},
    check_specs=[
        dg.AssetCheckSpec(
            "value_rises_in_successes",
            asset="advantages",
            description="In at least 80% of successful episodes V is higher over the last quarter than "
            "over the first: the value function sees progress.",
        )
    ],
    description="A_t = sum of N rewards + V(o_{t+N}) - V(o_t) (N = 50, truncated at the episode end).",
)
def advantages(context: dg.AssetExecutionContext, recap: RecapResource) -> dg.MaterializeResult:
    task, iteration = task_and_iteration(context)
    store = recap.store()
    summary = iteration_advantages(store, recap.settings(), recap.checkpoints(), task, iteration)
    rows = store.read_derived(ADVANTAGES, filter=partition_filter(task, iteration))
    episodes = store.episodes(task=task, max_iteration=iteration, versions=summary["versions"]).frame
    picture = values_along_episodes(
        _example_curves(rows, episodes), f"V^{iteration} along episodes of {task}"
    )
    success_ids = set(episodes.filter(pl.col("success"))["episode_id"].to_list())
    return dg.MaterializeResult(
        metadata={
            "rows": summary["steps"],
            "advantages_table_version": summary["table_version"],
            "value_checkpoint_sha256": summary["value_checkpoint"].sha256,
            "table_versions": dg.MetadataValue.json(summary["versions"]),
            "mean_advantage": summary["mean_advantage"],
            "mean_value_success": summary["mean_value_success"]
            if summary["mean_value_success"] is not None
            else float("nan"),
            "mean_value_failure": summary["mean_value_failure"]
            if summary["mean_value_failure"] is not None
            else float("nan"),
            "value_return_mae": summary["value_return_mae"],
            "values_along_episodes": image(picture, "values along episodes"),
        },
        check_results=[value_rises_check(rows, success_ids, "value_rises_in_successes")],
    )
