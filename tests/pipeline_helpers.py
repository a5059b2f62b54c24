"""Reading what a Dagster run recorded, shared by the pipeline and experiment tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg

from assets.resources import RecapResource
from pipelines.instance import PROJECT_DAGSTER_YAML


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


def project_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment for a subprocess: a fresh DAGSTER_HOME with the project's dagster.yaml, RECAP_HOME
    under ``tmp_path``, plus ``extra`` variables."""
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copyfile(PROJECT_DAGSTER_YAML, home / "dagster.yaml")
    return {**os.environ, "DAGSTER_HOME": str(home), "RECAP_HOME": str(tmp_path / "data"), **extra}
