"""The evaluation outcomes: one row per episode of every evaluation, beside the metrics ledger.

The ledger keeps each evaluation's aggregate; comparing two policies evaluated on the same seeds needs
the episodes themselves (a paired analysis resamples seeds, not aggregates). A row's key is the ledger
row's key plus the seed, so an evaluation's episodes are found from its ledger row, and re-evaluating a
policy on the same seeds replaces its episodes instead of adding them twice.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandera.polars as pa
import polars as pl
import pyarrow as pa_arrow

from schemas.metrics import METRICS_KEY

OUTCOMES_KEY = (*METRICS_KEY, "seed")

OUTCOMES_ARROW_SCHEMA = pa_arrow.schema(
    [
        ("study", pa_arrow.string()),
        ("task", pa_arrow.string()),
        ("iteration", pa_arrow.int32()),
        ("method", pa_arrow.string()),
        ("policy_sha256", pa_arrow.string()),
        ("policy_weights_sha256", pa_arrow.string()),
        ("beta", pa_arrow.float64()),
        ("split", pa_arrow.string()),
        ("seed", pa_arrow.int64()),
        ("success", pa_arrow.bool_()),
        ("steps", pa_arrow.int32()),  # executed steps (the episode ends at success or max_steps)
        ("duration_s", pa_arrow.float64()),  # steps x control period: the episode's robot time
        ("reset_s", pa_arrow.float64()),  # the reset charged to each episode in throughput
        ("run_id", pa_arrow.string()),
        ("evaluated_at", pa_arrow.timestamp("us", tz="UTC")),  # the ledger row's: its episodes
    ]
)


def outcomes_validation_schema(methods: Sequence[str], splits: Sequence[str]) -> pa.DataFrameSchema:
    """Rules an outcome row must satisfy (methods and splits passed in, as for the ledger's schema)."""
    text = pa.Column(pl.String, pa.Check.str_length(min_value=1))
    return pa.DataFrameSchema(
        {
            "study": text,
            "task": text,
            "iteration": pa.Column(pl.Int32, pa.Check.ge(0)),
            "method": pa.Column(pl.String, pa.Check.isin(list(methods))),
            "policy_sha256": text,
            "policy_weights_sha256": text,
            "beta": pa.Column(pl.Float64, pa.Check.ge(0.0)),
            "split": pa.Column(pl.String, pa.Check.isin(list(splits))),
            "seed": pa.Column(pl.Int64, pa.Check.ge(0)),
            "success": pa.Column(pl.Boolean),
            "steps": pa.Column(pl.Int32, pa.Check.gt(0)),
            "duration_s": pa.Column(pl.Float64, pa.Check.gt(0.0)),
            "reset_s": pa.Column(pl.Float64, pa.Check.ge(0.0)),
            "run_id": pa.Column(pl.String),
            "evaluated_at": pa.Column(pl.Datetime("us", "UTC")),
        },
        strict=True,
        coerce=True,
        unique=list(OUTCOMES_KEY),
    )
