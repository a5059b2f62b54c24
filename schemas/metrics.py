"""The metrics ledger: one row per evaluation of one policy on one task.

The pandera schema guards every row before it reaches the Delta table; the Arrow schema is what Delta
stores, so readers (``recap query``, notebooks, the report) see stable types.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandera.polars as pa
import polars as pl
import pyarrow as pa_arrow

# A ledger row's natural key: one evaluation of one policy (its weights, sampled at one beta) on one
# task, iteration and seed split of one study. Its episodes (schemas/outcomes.py) add the seed.
METRICS_KEY = ("study", "task", "iteration", "method", "policy_weights_sha256", "split", "beta")

METRICS_ARROW_SCHEMA = pa_arrow.schema(
    [
        ("task", pa_arrow.string()),
        ("iteration", pa_arrow.int32()),
        ("method", pa_arrow.string()),
        ("policy_checkpoint", pa_arrow.string()),
        ("policy_sha256", pa_arrow.string()),
        ("policy_weights_sha256", pa_arrow.string()),
        ("beta", pa_arrow.float64()),  # the guidance weight the policy was sampled with (1: none)
        ("lookahead", pa_arrow.int32()),  # N of the advantages its labels came from
        ("episodes", pa_arrow.int32()),
        ("success_rate", pa_arrow.float64()),
        ("success_rate_se", pa_arrow.float64()),
        ("mean_duration_s", pa_arrow.float64()),
        ("mean_duration_s_se", pa_arrow.float64()),
        ("throughput_per_hour", pa_arrow.float64()),
        ("throughput_per_hour_se", pa_arrow.float64()),
        ("eval_seeds", pa_arrow.string()),
        ("split", pa_arrow.string()),
        ("study", pa_arrow.string()),
        ("run_id", pa_arrow.string()),
        ("evaluated_at", pa_arrow.timestamp("us", tz="UTC")),
    ]
)


def metrics_validation_schema(methods: Sequence[str], splits: Sequence[str]) -> pa.DataFrameSchema:
    """Rules a ledger row must satisfy: rates are rates, counts are positive, the method and the seed
    split are ones the ledger knows (``methods`` and ``splits``: the method registry's and the seed
    splits' names, passed in so the data model depends on nothing above it)."""
    text = pa.Column(pl.String, pa.Check.str_length(min_value=1))
    return pa.DataFrameSchema(
        {
            "task": text,
            "iteration": pa.Column(pl.Int32, pa.Check.ge(0)),
            "method": pa.Column(pl.String, pa.Check.isin(list(methods))),
            "policy_checkpoint": pa.Column(pl.String),
            "policy_sha256": text,
            "policy_weights_sha256": text,
            "beta": pa.Column(pl.Float64, pa.Check.ge(0.0)),
            "lookahead": pa.Column(pl.Int32, pa.Check.ge(1)),
            "episodes": pa.Column(pl.Int32, pa.Check.gt(0)),
            "success_rate": pa.Column(pl.Float64, pa.Check.in_range(0.0, 1.0)),
            "success_rate_se": pa.Column(pl.Float64, pa.Check.ge(0.0)),
            "mean_duration_s": pa.Column(pl.Float64, pa.Check.ge(0.0), nullable=True),
            "mean_duration_s_se": pa.Column(pl.Float64, pa.Check.ge(0.0), nullable=True),
            "throughput_per_hour": pa.Column(pl.Float64, pa.Check.ge(0.0)),
            "throughput_per_hour_se": pa.Column(pl.Float64, pa.Check.ge(0.0)),
            "eval_seeds": pa.Column(pl.String),
            "split": pa.Column(pl.String, pa.Check.isin(list(splits))),
            "study": text,
            "run_id": pa.Column(pl.String),
            "evaluated_at": pa.Column(pl.Datetime("us", "UTC")),
        },
        strict=True,
        coerce=True,
    )
