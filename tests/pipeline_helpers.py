"""Reading what a Dagster run recorded, shared by the pipeline and experiment tests."""

from __future__ import annotations

import dagster as dg


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
