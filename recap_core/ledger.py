"""The metrics ledger in Delta Lake: one row per (task, iteration, method, policy weights, beta, split).

Delta gives the ledger what a results spreadsheet lacks: atomic appends from concurrent runs, time travel
to any earlier state, and SQL access. Rows are upserted on their natural key, so re-materialising an
evaluation replaces its row instead of adding a duplicate.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable, Field, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

from recap_core.extraction import LEDGER_METHODS
from recap_core.locations import DEFAULT_STUDY
from recap_core.object_storage import delta_storage_options, is_object_store
from recap_core.seeds import EVAL_SPLITS
from schemas.metrics import METRICS_ARROW_SCHEMA, metrics_validation_schema

# A policy is identified by its weights, not by its checkpoint's sha256, which also covers config.json's
# created_at and wall-clock training times: retraining the same weights from the same data re-keys
# nothing, and re-evaluating a policy replaces its row. The same weights sampled with another guidance
# weight beta are another policy, with a row of its own.
LEDGER_KEY = ("study", "task", "iteration", "method", "policy_weights_sha256", "split", "beta")
_COMMIT_ATTEMPTS = 20
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
    table = _validated_table(rows)
    uri = str(uri)
    for attempt in range(_COMMIT_ATTEMPTS):
        try:
            return _upsert(uri, table)
        except CommitFailedError:
            # Another run committed first (two evaluations finishing together): re-read and retry.
            if attempt == _COMMIT_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * (attempt + 1) + random.random() * 0.05)
    raise AssertionError("unreachable")


def _upsert(uri: str, table: pa.Table) -> int:
    try:
        ledger = DeltaTable(uri, storage_options=delta_storage_options(uri))
    except TableNotFoundError:
        if not is_object_store(uri):
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
        try:
            write_deltalake(uri, table, mode="error", storage_options=delta_storage_options(uri))
            return DeltaTable(uri, storage_options=delta_storage_options(uri)).version()
        except DeltaError:
            # created by a concurrent writer meanwhile: merge into it
            ledger = DeltaTable(uri, storage_options=delta_storage_options(uri))
    _add_missing_columns(ledger, table.schema)
    predicate = " AND ".join(f"target.{k} = source.{k}" for k in LEDGER_KEY)
    (
        ledger.merge(table, predicate=predicate, source_alias="source", target_alias="target")
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .execute()
    )
    return ledger.version()


def _add_missing_columns(ledger: DeltaTable, schema: pa.Schema) -> None:
    """A ledger written before a column existed (split, beta, lookahead) gains it, null in its old rows."""
    present = set(ledger.schema().to_arrow().names)
    missing = [f for f in schema if f.name not in present]
    if missing:
        ledger.alter.add_columns([_delta_field(f) for f in missing])


_DELTA_TYPES = {pa.string(): "string", pa.float64(): "double", pa.int32(): "integer", pa.int64(): "long"}


def _delta_field(field: pa.Field) -> Field:
    if field.type not in _DELTA_TYPES:
        raise ValueError(f"ledger column {field.name!r} ({field.type}) cannot be added to an older ledger")
    return Field(field.name, _DELTA_TYPES[field.type], nullable=True)


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
