"""The steps table: one row per control step, episodes keyed by (episode_id, t).

Observation and action are float32 vectors whose size is fixed per task (checked against the episodes
table at ingest); they are Arrow lists rather than fixed-size lists because different tasks or robots may
have different sizes in one table. Images are encoded bytes in Lance blob columns so scans never pull them.
"""

from __future__ import annotations

from collections.abc import Iterable

import lance
import pandera.polars as pa
import polars as pl
import pyarrow

IMAGE_COLUMN_PREFIX = "image_"
CAMERA_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
"""A camera name becomes a column name (``image_<camera>``; Lance refuses '.') and, in a LeRobot export, a
folder name: letters, digits, '_' and '-', starting with a letter or digit, 64 characters at most."""


def steps_arrow_schema(cameras: Iterable[str] = ()) -> pyarrow.Schema:
    """Arrow schema of the steps table, with one lazily-read blob column ``image_<camera>`` per camera."""
    fields = [
        pyarrow.field("episode_id", pyarrow.string(), nullable=False),
        pyarrow.field("t", pyarrow.int32(), nullable=False),
        pyarrow.field("observation", pyarrow.list_(pyarrow.float32()), nullable=False),
        pyarrow.field("action", pyarrow.list_(pyarrow.float32()), nullable=False),
        pyarrow.field("is_correction", pyarrow.bool_(), nullable=False),
    ]
    fields += [lance.blob_field(f"{IMAGE_COLUMN_PREFIX}{camera}") for camera in sorted(cameras)]
    return pyarrow.schema(fields)


def _finite_vector() -> pa.Check:
    return pa.Check(
        lambda d: d.lazyframe.select(pl.col(d.key).list.eval(pl.element().is_finite()).list.all()),
        name="all values finite",
    )


def _t_counts_from_zero() -> pa.Check:
    """t must be exactly 0..T-1 within each episode, in row order (the builder emits rows in t order)."""
    return pa.Check(
        lambda d: d.lazyframe.select(pl.col("t") == pl.int_range(pl.len()).over("episode_id").cast(pl.Int32)),
        name="t is 0..T-1 within its episode",
    )


def steps_validation_schema() -> pa.DataFrameSchema:
    """Rules every step row must meet (image columns, if any, are not inspected: they are opaque bytes)."""
    return pa.DataFrameSchema(
        {
            "episode_id": pa.Column(pl.String),
            "t": pa.Column(pl.Int32, pa.Check.ge(0)),
            "observation": pa.Column(pl.List(pl.Float32), _finite_vector()),
            "action": pa.Column(pl.List(pl.Float32), _finite_vector()),
            "is_correction": pa.Column(pl.Boolean),
        },
        checks=[_t_counts_from_zero()],
        strict=False,
        coerce=False,
    )
