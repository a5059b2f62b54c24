"""The episodes table: one row per episode; the commit point of every ingest.

Readers only trust steps whose episode row exists, so this table's version is the store's version.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl
import pyarrow

from schemas.names import NAME_PATTERN, NAME_RULE

EPISODE_KINDS: tuple[str, ...] = ("demo", "autonomous", "intervention")
"""Who produced an episode: an operator's demonstration, the policy alone, or the policy with a human
who took over (its takeover steps are corrections)."""

EPISODES_ARROW_SCHEMA = pyarrow.schema(
    [
        pyarrow.field("episode_id", pyarrow.string(), nullable=False),
        pyarrow.field("task", pyarrow.string(), nullable=False),
        pyarrow.field("prompt", pyarrow.string(), nullable=False),
        pyarrow.field("kind", pyarrow.string(), nullable=False),
        pyarrow.field("success", pyarrow.bool_(), nullable=False),
        pyarrow.field("length", pyarrow.int32(), nullable=False),
        pyarrow.field("iteration", pyarrow.int32(), nullable=False),
        pyarrow.field("collected_by", pyarrow.string(), nullable=False),
        pyarrow.field("robot", pyarrow.string(), nullable=False),
        pyarrow.field("collected_at", pyarrow.timestamp("us", tz="UTC"), nullable=False),
        pyarrow.field("source", pyarrow.string(), nullable=False),
        pyarrow.field("obs_dim", pyarrow.int32(), nullable=False),
        pyarrow.field("action_dim", pyarrow.int32(), nullable=False),
        # sha256 of the episode's content (labels + step arrays): an existing id with a different hash is
        # a conflict to refuse, an identical hash is a harmless re-ingest to skip.
        pyarrow.field("content_hash", pyarrow.string(), nullable=False),
    ]
)


def _non_empty(column: str) -> pa.Check:
    return pa.Check(
        lambda d: d.lazyframe.select(pl.col(d.key).str.len_chars() > 0), name=f"{column} non-empty"
    )


def episodes_validation_schema() -> pa.DataFrameSchema:
    """Rules every episode row must meet; nulls are refused everywhere (a missing label is an error)."""
    return pa.DataFrameSchema(
        {
            "episode_id": pa.Column(pl.String, _non_empty("episode_id"), unique=True),
            # a task name becomes checkpoint folders and partition keys: the names' rule (schemas/names.py)
            "task": pa.Column(
                pl.String, pa.Check.str_matches(f"^{NAME_PATTERN}$", error=f"task name: {NAME_RULE}")
            ),
            "prompt": pa.Column(pl.String),
            "kind": pa.Column(pl.String, pa.Check.isin(list(EPISODE_KINDS))),
            "success": pa.Column(pl.Boolean),
            "length": pa.Column(pl.Int32, pa.Check.ge(1)),
            "iteration": pa.Column(pl.Int32, pa.Check.ge(0)),
            "collected_by": pa.Column(pl.String),
            "robot": pa.Column(pl.String),
            "collected_at": pa.Column(pl.Datetime("us", "UTC")),
            "source": pa.Column(pl.String),
            "obs_dim": pa.Column(pl.Int32, pa.Check.ge(1)),
            "action_dim": pa.Column(pl.Int32, pa.Check.ge(1)),
            "content_hash": pa.Column(pl.String, pa.Check.str_length(64, 64)),
        },
        strict=True,
        coerce=False,
    )


CONTENTS = "episode_contents"
"""Which episode holds each recording: content_hash -> episode_id, the hash the table's key. The store
claims a content here before storing an episode, in the same conflict-checked commit that makes keys
unique, so two writers importing one recording from two folders store it once."""
CONTENTS_KEY = ["content_hash"]
CONTENTS_ARROW_SCHEMA = pyarrow.schema(
    [
        pyarrow.field("content_hash", pyarrow.string(), nullable=False),
        pyarrow.field("episode_id", pyarrow.string(), nullable=False),
    ]
)
