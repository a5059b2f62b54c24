"""Every table declares its key as Lance's (unenforced) primary key: that is what makes concurrent
writers safe without a lock.

Lance commits a version by a conditional put (a rename on local disk), so no commit overwrites
another; but two merge_inserts that insert the same new key at the same moment both land unless the
table declares its primary key in the schema and the merge joins on it (``merge_insert(None)``). Then
the later commit sees the keys the earlier one inserted, re-runs against it and inserts nothing twice.
Measured on Lance 14 with two processes racing over the same keys: without the declaration every run
stored the keys twice; with it, none did (composite keys included, as long as the merge does not name
its ``on`` columns explicitly).
"""

from __future__ import annotations

from collections.abc import Sequence

import lance
import pyarrow

PRIMARY_KEY = "lance-schema:unenforced-primary-key"
PRIMARY_KEY_POSITION = f"{PRIMARY_KEY}:position"


def declared_primary_key(schema: pyarrow.Schema) -> list[str]:
    """The key columns a table declares, in key order (empty if it declares none)."""
    declared = []
    for index, schema_field in enumerate(schema):
        metadata = schema_field.metadata or {}
        if metadata.get(PRIMARY_KEY.encode()) == b"true":
            position = int(metadata.get(PRIMARY_KEY_POSITION.encode(), index))
            declared.append((position, schema_field.name))
    return [name for _, name in sorted(declared)]


def _key_metadata(keys: Sequence[str]) -> dict[str, dict[str, str]]:
    return {key: {PRIMARY_KEY: "true", PRIMARY_KEY_POSITION: str(i)} for i, key in enumerate(keys)}


def with_primary_key(table: pyarrow.Table, keys: Sequence[str]) -> pyarrow.Table:
    """The table with ``keys`` declared as its primary key, for creating a Lance table from it."""
    metadata = _key_metadata(keys)
    for key in keys:
        if table.column(key).null_count:
            raise ValueError(f"key column {key!r} holds {table.column(key).null_count} null value(s)")
    fields = [
        f.with_metadata({**(f.metadata or {}), **metadata[f.name]}).with_nullable(False)
        if f.name in metadata
        else f
        for f in table.schema
    ]
    return table.cast(pyarrow.schema(fields, metadata=table.schema.metadata))


def ensure_primary_key(dataset: lance.LanceDataset, keys: Sequence[str], table: str) -> None:
    """Declare ``keys`` on a table written before tables declared them (one metadata-only commit).

    Key columns become non-nullable, as Lance requires of a primary key. A table that declares a
    different key is refused: merging on other columns than the declared key
    would silently lose the protection above.
    """
    declared = declared_primary_key(dataset.schema)
    if declared == list(keys):
        return
    if declared:
        raise ValueError(
            f"table {table!r} declares primary key {declared}, but is written keyed by {list(keys)}"
        )
    nullable = [key for key in keys if dataset.schema.field(key).nullable]
    if nullable:  # Lance requires non-null key columns; every key written so far was non-null
        dataset.alter_columns(*({"path": key, "nullable": False} for key in nullable))
    dataset.update_field_metadata(_key_metadata(keys))
