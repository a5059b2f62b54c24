"""Turning stage results into Dagster metadata: lineage facts, curves and pictures."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import TYPE_CHECKING, Any

import dagster as dg

from assets.resources import RecapResource
from recap_core.loop.context import RunContext
from recap_core.loop.results import LabelResult, TrainingResult

if TYPE_CHECKING:
    from recap_core.loop.collection import CollectionResult


def image(png: bytes, alt: str) -> dg.MetadataValue:
    """A PNG inline in the asset's metadata (rendered by the Dagster UI's Markdown viewer)."""
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


def optional_float(value: float | None) -> float:
    """Dagster metadata has no null number: a statistic of an empty population is NaN."""
    return float("nan") if value is None else float(value)


def training_metadata(result: TrainingResult, title: str) -> dict[str, Any]:
    from recap_core.loop.plots import training_curve  # matplotlib: loaded by the step that draws

    history = result.history
    meta: dict[str, Any] = {
        "checkpoint": dg.MetadataValue.path(result.checkpoint.path),
        "checkpoint_sha256": result.checkpoint.sha256,
        "parent_checkpoint": dg.MetadataValue.path(result.parent.path) if result.parent else "none",
        "parent_sha256": result.parent.sha256 if result.parent else "none",
        "table_versions": dg.MetadataValue.json(result.versions),
        "episodes": result.episodes,
        "rows": result.steps,
        "episodes_per_iteration": dg.MetadataValue.json(
            {str(k): v for k, v in result.episodes_per_iteration.items()}
        ),
        "epochs": history.epochs_run,
        "best_epoch": history.best_epoch,
        "final_train_loss": float(history.train_loss[-1]) if history.train_loss else float("nan"),
        "final_heldout_loss": float(history.val_loss[-1]) if history.val_loss else float("nan"),
        "samples_per_second": float(history.samples_per_second),
        "training_seconds": float(history.seconds),
        "training_curve": image(training_curve(history.train_loss, history.val_loss, title), title),
    }
    meta.update({k: v for k, v in result.extra.items() if isinstance(v, int | float | str)})
    return meta


def label_metadata(result: LabelResult) -> dict[str, Any]:
    return {
        "mode": result.mode,
        "thresholds": dg.MetadataValue.json(result.thresholds),
        "target_positive_fraction": dg.MetadataValue.json(result.target_fraction),
        "positive_fraction": dg.MetadataValue.json(result.positive_fraction),
        "threshold_population": dg.MetadataValue.json(result.population),
        "threshold_population_steps": dg.MetadataValue.json(result.population_steps),
        "population_positive_fraction": dg.MetadataValue.json(result.population_positive_fraction),
        "positive_fraction_per_kind": dg.MetadataValue.json(result.positive_fraction_per_kind),
        "correction_steps": result.corrections,
        "correction_steps_labelled_true": result.corrections_labelled_true,
        "rows": result.steps,
        "indicators_table_version": result.table_version,
        "value_checkpoint_sha256": result.value_checkpoint.sha256 if result.value_checkpoint else "none",
        "table_versions": dg.MetadataValue.json(result.versions),
    }


def label_version(result: LabelResult) -> dg.DataVersion:
    """Labels are determined by the value function that made the advantages, the thresholds and the
    labelled steps."""
    sha = result.value_checkpoint.sha256 if result.value_checkpoint else None
    return data_version(sha, result.mode, result.thresholds, result.steps, result.corrections)


def collection_metadata(result: CollectionResult, breakdown: str) -> dict[str, Any]:
    """What a collection stage stored; ``breakdown`` names its per-task or per-kind summary."""
    return {
        "added": result.added,
        "skipped_already_stored": result.skipped,
        "table_versions": dg.MetadataValue.json(result.versions),
        breakdown: dg.MetadataValue.json(result.per_task),
        **{k: v for k, v in result.extra.items() if isinstance(v, int | float | str)},
    }


SETTINGS_TAG = "recap/settings_sha256"


def step_context(context: dg.AssetExecutionContext, recap: RecapResource) -> RunContext:
    """This step's run context, built once from the resource; the run is tagged with the sha256 of the
    resolved settings, so runs with the same settings can be found in the UI's run list."""
    ctx = recap.run_context(context.run_id)
    context.instance.add_run_tags(context.run_id, {SETTINGS_TAG: ctx.settings_sha256()})
    return ctx


def data_version(*facts: object) -> dg.DataVersion:
    """A materialisation's data version from what determines its content (a checkpoint's sha256, the
    digest of the episodes it holds, ...): a re-run that reproduces the same content keeps the version,
    so nothing downstream turns stale; a different content is a new version, and everything downstream
    shows as stale in the UI until it is re-materialised."""
    digest = hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()
    return dg.DataVersion(digest[:24])


def materialized(
    ctx: RunContext,
    metadata: dict[str, Any],
    check_results: list[dg.AssetCheckResult] | None = None,
    version: dg.DataVersion | None = None,
) -> dg.MaterializeResult:
    """The step's result, with the resolved settings it ran (the run's record of what it did) and the
    data version of what it produced."""
    record = {
        "settings": dg.MetadataValue.json(ctx.settings_record()),
        "settings_sha256": ctx.settings_sha256(),
    }
    return dg.MaterializeResult(
        metadata={**metadata, **record}, check_results=check_results or [], data_version=version
    )
