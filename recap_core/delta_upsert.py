"""Upserting rows into a Delta table on their natural key, safely from concurrent runs.

The ledger and the evaluation outcomes are written by evaluations that may finish together (two runs,
two studies): Delta's optimistic commits make each merge atomic, and a commit that lost the race is
retried against the table as the winner left it. A table written before a column existed gains it, null
in its old rows.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, Field, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

from recap_core.object_storage import delta_storage_options, is_object_store

_COMMIT_ATTEMPTS = 20


def upsert_rows(uri: str | Path, table: pa.Table, key: Sequence[str]) -> int:
    """Merge ``table`` into the Delta table at ``uri`` (created if absent) on ``key``; its new version."""
    uri = str(uri)
    for attempt in range(_COMMIT_ATTEMPTS):
        try:
            return _upsert(uri, table, key)
        except CommitFailedError:
            # Another run committed first: re-read and retry.
            if attempt == _COMMIT_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * (attempt + 1) + random.random() * 0.05)
    raise AssertionError("unreachable")


def _upsert(uri: str, table: pa.Table, key: Sequence[str]) -> int:
    options = delta_storage_options(uri)
    try:
        target = DeltaTable(uri, storage_options=options)
    except TableNotFoundError:
        if not is_object_store(uri):
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
        try:
            write_deltalake(uri, table, mode="error", storage_options=options)
            return DeltaTable(uri, storage_options=options).version()
        except DeltaError:
            # created by a concurrent writer meanwhile: merge into it
            target = DeltaTable(uri, storage_options=options)
    _add_missing_columns(target, table.schema)
    predicate = " AND ".join(f"target.{k} = source.{k}" for k in key)
    (
        target.merge(table, predicate=predicate, source_alias="source", target_alias="target")
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .execute()
    )
    return target.version()


def _add_missing_columns(target: DeltaTable, schema: pa.Schema) -> None:
    present = set(target.schema().to_arrow().names)
    missing = [f for f in schema if f.name not in present]
    if missing:
        target.alter.add_columns([_delta_field(f) for f in missing])


_DELTA_TYPES = {
    pa.string(): "string",
    pa.float64(): "double",
    pa.int32(): "integer",
    pa.int64(): "long",
    pa.bool_(): "boolean",
}


def _delta_field(field: pa.Field) -> Field:
    if field.type not in _DELTA_TYPES:
        raise ValueError(f"column {field.name!r} ({field.type}) cannot be added to an older table")
    return Field(field.name, _DELTA_TYPES[field.type], nullable=True)
