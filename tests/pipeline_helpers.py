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


def with_preset_changes(recap: RecapResource, folder: Path, **changes: dict) -> RecapResource:
    """The same study (same store, checkpoints and ledger) with the tiny preset's sections changed, e.g.
    ``policy_finetune={"epochs": 2}``: what retrains a stage into a new checkpoint version."""
    import yaml

    from recap_core.presets import preset_file

    settings = yaml.safe_load(preset_file("tiny").read_text())
    for section, values in changes.items():
        settings[section] = {**settings.get(section, {}), **values}
    file = folder / f"tiny-{abs(hash(repr(sorted(changes.items())))) % 10**8}.yaml"
    file.write_text(yaml.safe_dump(settings))
    return RecapResource(**{**recap.fields(), "preset": str(file)})


def unresolved_references(recap: RecapResource) -> dict[str, set[str]]:
    """Every checkpoint a stored episode, derived row or ledger row names that no stored version is."""
    from recap_core.loop.references import referenced_checkpoints

    ctx = recap.run_context()
    references = referenced_checkpoints(ctx)
    assert references, "the study's rows name checkpoints"
    return {sha: where for sha, where in references.items() if ctx.checkpoints.find(sha) is None}


def stale_status(instance: dg.DagsterInstance, key: str, partition: str) -> tuple[str, list[str]]:
    """What the UI shows for one asset partition: its stale status ("FRESH", "STALE", "MISSING") and the
    assets its stale causes name (Dagster's own resolver, which the UI's GraphQL uses)."""
    from dagster._core.definitions.data_version import CachingStaleStatusResolver
    from dagster._core.loader import LoadingContextForTest

    from pipelines.definitions import defs

    graph = defs.get_repository_def().asset_graph
    resolver = CachingStaleStatusResolver(instance, graph, LoadingContextForTest(instance))
    status = resolver.get_status(dg.AssetKey(key), partition)
    causes = sorted({cause.dependency.asset_key.to_user_string() for cause in resolver.get_stale_causes(
        dg.AssetKey(key), partition) if cause.dependency})  # fmt: skip
    return status.name, causes


def project_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment for a subprocess: a fresh DAGSTER_HOME with the project's dagster.yaml, RECAP_HOME
    under ``tmp_path``, plus ``extra`` variables."""
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copyfile(PROJECT_DAGSTER_YAML, home / "dagster.yaml")
    return {**os.environ, "DAGSTER_HOME": str(home), "RECAP_HOME": str(tmp_path / "data"), **extra}
