"""Reading what a Dagster run recorded, shared by the pipeline and experiment tests."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from pipelines.resources import RecapResource


def latest_metadata(instance: dg.DagsterInstance, key: str, partition: str | None = None) -> dict:
    """The metadata values of the newest materialisation of ``key`` (in ``partition``)."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(key), asset_partitions=[partition] if partition else None
        ),
        limit=1,
    ).records
    assert records, f"{key} {partition} was never materialised"
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def tiny_recap(root: Path) -> RecapResource:
    """The tiny preset with every table, checkpoint and the ledger under ``root``."""
    (root / "dagster").mkdir(exist_ok=True)
    return RecapResource(
        preset="tiny",
        store_uri=str(root / "lance"),
        checkpoint_root=str(root / "checkpoints"),
        ledger_uri=str(root / "ledger" / "metrics"),
    )
