"""The labelled LeRobot v3.0 dataset of one (task, iteration): what pi^k trains on, for another trainer.

In a group of its own, outside the iteration's jobs: the nightly iteration does not need it, so it is
materialised on demand (the UI, ``dg launch --assets labelled_dataset --partition "1|push-v3"``), and
shows as stale when the indicators it was made from are re-materialised.
"""

import dagster as dg

from assets import descriptions
from assets.indicators import indicators
from assets.iteration import PARTITIONS
from assets.k8s import table_tags
from assets.metadata import data_version, materialized, step_context
from assets.partitions import task_and_iteration
from assets.resources import RecapResource

DATASETS_GROUP = "datasets"


class LabelledDatasetConfig(dg.Config):
    """How the dataset is written: cameras as mp4 video features (``video``) or PNG image features, and
    its recording rate (``fps``; 0: the simulated task's control rate)."""

    video: bool = False
    fps: float = 0.0


@dg.asset(
    op_tags=table_tags(),
    group_name=DATASETS_GROUP,
    partitions_def=PARTITIONS,
    deps=[indicators],
    kinds={"parquet"},
    description=descriptions.LABELLED_DATASET,
)
def labelled_dataset(
    context: dg.AssetExecutionContext, config: LabelledDatasetConfig, recap: RecapResource
) -> dg.MaterializeResult:
    from recap_core.loop.labelled_dataset import write_labelled_dataset  # torch: imported by the step

    task, iteration = task_and_iteration(context)
    ctx = step_context(context, recap)
    result = write_labelled_dataset(ctx, task, iteration, video=config.video, fps=config.fps or None)
    lineage, dropout = result.lineage, result.dropout
    return materialized(
        ctx,
        {
            "path": dg.MetadataValue.path(str(result.path)),
            "episodes": result.episodes,
            "frames": result.frames,
            "positive_frames": result.counts["positive"],
            "negative_frames": result.counts["negative"],
            "plain_frames": result.counts["plain"],
            "indicator_dropout_share": float(dropout["share"]),
            "indicator_dropout_seed": int(dropout["seed"]),
            "cameras": dg.MetadataValue.json(result.cameras),
            "video": result.video,
            "value_checkpoint_sha256": lineage["value_checkpoint"]["sha256"],
            "thresholds": dg.MetadataValue.json(lineage["thresholds"]),
            "table_versions": dg.MetadataValue.json(lineage["table_versions"]),
        },
        version=data_version(lineage, result.video, config.fps),
    )
