"""SQL over the store: DuckDB sees every Lance table in the store root and every Delta table in the ledger.

Tables are registered as Arrow datasets, so DuckDB pushes projections and filters down and only reads
what a query needs. ``steps`` is a view limited to committed episodes (see ``EpisodeStore``).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import lance
import polars as pl
import pyarrow as pa

from recap_core.locations import data_root, ledger_uri, outcomes_uri
from recap_core.store.episode_store import EPISODES, STEPS, EpisodeStore
from schemas.episodes import EPISODES_ARROW_SCHEMA
from schemas.steps import steps_arrow_schema


class BlobsAsBytes(lance.LanceDataset):
    """A Lance dataset whose blob columns (camera images) read as their encoded bytes.

    Lance returns blob columns as position/size descriptors by default, while its schema declares the
    blob storage struct; DuckDB refuses that mismatch, so ``SELECT * FROM steps`` failed once a dataset
    had images. This view declares them as binary and scans them as binary. Projection pushdown is kept,
    so a query that does not name an image column still never reads one.
    """

    def __init__(self, dataset: lance.LanceDataset) -> None:  # shares the opened dataset, no re-open
        self.__dict__.update(vars(dataset))

    @property
    def schema(self) -> pa.Schema:
        schema = super().schema
        for index, field in enumerate(schema):
            if _is_blob(field):
                schema = schema.set(index, pa.field(field.name, pa.large_binary(), field.nullable))
        return schema

    def scanner(self, *args, **kwargs) -> lance.LanceScanner:
        kwargs.setdefault("blob_handling", "all_binary")
        return super().scanner(*args, **kwargs)


def _is_blob(field: pa.Field) -> bool:
    return isinstance(field.type, pa.ExtensionType) and field.type.extension_name.startswith("lance.blob")


def delta_tables(ledger_root: Path | None = None) -> dict[str, str]:
    """Delta tables under ``<data_root>/ledger`` by folder name, plus the configured metrics ledger."""
    root = ledger_root if ledger_root is not None else data_root() / "ledger"
    found = {}
    if root.is_dir():
        found = {p.name: str(p) for p in sorted(root.iterdir()) if (p / "_delta_log").is_dir()}
    if ledger_root is None:  # the configured ledger and its outcomes, wherever RECAP_LEDGER_URI puts them
        for configured in (Path(ledger_uri()), Path(outcomes_uri(ledger_uri()))):
            if (configured / "_delta_log").is_dir():
                found.setdefault(configured.name, str(configured))
    return found


def connect(store: EpisodeStore, ledger_root: Path | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with one view per table (latest versions).

    ``episodes`` and ``steps`` always exist: on an empty store, or after a crash while a table's first
    version was being written (a folder with no committed version), they are empty tables of the
    store's schema, so a query answers with no rows instead of a catalog error.
    """
    from deltalake import DeltaTable

    connection = duckdb.connect()
    names = store.table_names() if Path(store.uri).is_dir() or "://" in store.uri else []
    opened = {name: store.dataset(name) for name in names}
    for name, dataset in opened.items():
        if dataset is not None:
            connection.register(f"{name}_all" if name == STEPS else name, BlobsAsBytes(dataset))
    if opened.get(EPISODES) is None:
        connection.register(EPISODES, EPISODES_ARROW_SCHEMA.empty_table())
    if opened.get(STEPS) is None:
        connection.register(f"{STEPS}_all", steps_arrow_schema().empty_table())
    connection.execute(
        f"CREATE VIEW {STEPS} AS SELECT * FROM {STEPS}_all "
        f"WHERE episode_id IN (SELECT episode_id FROM {EPISODES})"
    )
    for name, uri in delta_tables(ledger_root).items():
        if name not in names:
            connection.register(name, DeltaTable(uri).to_pyarrow_dataset())
    return connection


def run_query(store: EpisodeStore, sql: str, ledger_root: Path | None = None) -> pl.DataFrame:
    """Run one SQL statement and return its result as a polars DataFrame."""
    return connect(store, ledger_root).sql(sql).pl()


def episode_summary(store: EpisodeStore) -> pl.DataFrame:
    """Per task, kind and iteration: episodes, frames, success rate and mean length."""
    frame = store.episodes().frame
    return (
        frame.group_by("task", "kind", "iteration")
        .agg(
            pl.len().alias("episodes"),
            pl.col("length").sum().alias("frames"),
            pl.col("success").mean().round(3).alias("success_rate"),
            pl.col("length").mean().round(1).alias("mean_length"),
        )
        .sort("task", "iteration", "kind")
    )
