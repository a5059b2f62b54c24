"""The metrics ledger in Delta Lake: one row per (task, iteration, method, policy weights, beta, split).

Delta gives the ledger what a results spreadsheet lacks: atomic appends from concurrent runs, time travel
to any earlier state, and SQL access. Rows are upserted on their natural key, so re-materialising an
evaluation replaces its row instead of adding a duplicate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from recap_core.delta_upsert import upsert_rows
from recap_core.extraction import LEDGER_METHODS
from recap_core.locations import DEFAULT_STUDY
from recap_core.object_storage import delta_storage_options
from recap_core.seeds import EVAL_SPLITS
from schemas.metrics import METRICS_ARROW_SCHEMA, METRICS_KEY, metrics_validation_schema

# A policy is identified by its weights, not by its checkpoint's sha256, which also covers config.json's
# created_at and wall-clock training times: retraining the same weights from the same data re-keys
# nothing, and re-evaluating a policy replaces its row. The same weights sampled with another guidance
# weight beta are another policy, with a row of its own.
LEDGER_KEY = METRICS_KEY
LEDGER_SCHEMA = metrics_validation_schema(LEDGER_METHODS, EVAL_SPLITS)


def _validated_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    overrides = {"iteration": pl.Int32, "episodes": pl.Int32, "lookahead": pl.Int32, "beta": pl.Float64}
    frame = pl.DataFrame(list(rows), schema_overrides=overrides)
    frame = LEDGER_SCHEMA.validate(frame.select([f.name for f in METRICS_ARROW_SCHEMA]))
    return frame.to_arrow().cast(METRICS_ARROW_SCHEMA)


def record_evaluations(uri: str | Path, rows: Iterable[Mapping[str, Any]]) -> int:
    """Upsert evaluation rows; returns the ledger's new Delta version.

    Validation runs before anything is written, so a bad row leaves the ledger untouched.
    """
    return upsert_rows(uri, _validated_table(rows), LEDGER_KEY)


def ledger_version(uri: str | Path) -> int:
    """The ledger's current Delta version (what a report pins)."""
    return DeltaTable(str(uri), storage_options=delta_storage_options(str(uri))).version()


def read_ledger(uri: str | Path, version: int | None = None) -> pl.DataFrame:
    """The whole ledger (optionally as of an earlier Delta version); empty with the schema if absent."""
    try:
        table = DeltaTable(str(uri), version=version, storage_options=delta_storage_options(str(uri)))
    except TableNotFoundError:
        return pl.from_arrow(METRICS_ARROW_SCHEMA.empty_table())
    return with_split(pl.from_arrow(table.to_pyarrow_table()))


# Rows from before a column existed: their seeds (1,000,000+) are now the validation split, and every
# run belonged to the default study.
_OLD_ROW_DEFAULTS = {"split": "validation", "study": DEFAULT_STUDY}


def with_split(rows: pl.DataFrame) -> pl.DataFrame:
    """Fill the columns older ledgers lack with what those rows were."""
    for column, value in _OLD_ROW_DEFAULTS.items():
        if column not in rows.columns:
            rows = rows.with_columns(pl.lit(None, dtype=pl.String).alias(column))
        rows = rows.with_columns(pl.col(column).fill_null(value))
    if "policy_weights_sha256" not in rows.columns:  # older rows: their checkpoint's sha is their identity
        rows = rows.with_columns(pl.lit(None, dtype=pl.String).alias("policy_weights_sha256"))
    rows = rows.with_columns(pl.col("policy_weights_sha256").fill_null(pl.col("policy_sha256")))
    for column, dtype in (("beta", pl.Float64), ("lookahead", pl.Int32)):  # not recorded before: null
        if column not in rows.columns:
            rows = rows.with_columns(pl.lit(None, dtype=dtype).alias(column))
    return rows.select([field.name for field in METRICS_ARROW_SCHEMA])


def newest_evaluations(rows: pl.DataFrame, split: str = "test") -> pl.DataFrame:
    """The newest evaluation of each (study, task, iteration, method) on one seed split: what tables and
    plots show (older rows stay in the ledger as history)."""
    return (
        rows.filter(split=split).sort("evaluated_at").group_by("study", "task", "iteration", "method").last()
    )
