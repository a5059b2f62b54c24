"""The metrics ledger: one row per evaluation of one policy on one task.

The pandera schema guards every row before it reaches the Delta table; the Arrow schema is what Delta
stores, so readers (``recap query``, notebooks, the report) see stable types.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl
import pyarrow as pa_arrow

from recap_core.methods import LEDGER_METHODS
from recap_core.seeds import EVAL_SPLITS

METRICS_ARROW_SCHEMA = pa_arrow.schema(
    [
        ("task", pa_arrow.string()),
        ("iteration", pa_arrow.int32()),
        ("method", pa_arrow.string()),
        ("policy_checkpoint", pa_arrow.string()),
        ("policy_sha256", pa_arrow.string()),
        ("policy_weights_sha256", pa_arrow.string()),
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


class MetricsRow(pa.DataFrameModel):
    """Rules a ledger row must satisfy: rates are rates, counts are positive, the method is known."""

    task: str = pa.Field(str_length={"min_value": 1})
    iteration: pl.Int32 = pa.Field(ge=0)
    method: str = pa.Field(isin=list(LEDGER_METHODS))
    policy_checkpoint: str
    policy_sha256: str = pa.Field(str_length={"min_value": 1})
    policy_weights_sha256: str = pa.Field(str_length={"min_value": 1})
    episodes: pl.Int32 = pa.Field(gt=0)
    success_rate: float = pa.Field(ge=0.0, le=1.0)
    success_rate_se: float = pa.Field(ge=0.0)
    mean_duration_s: float = pa.Field(nullable=True, ge=0.0)
    mean_duration_s_se: float = pa.Field(nullable=True, ge=0.0)
    throughput_per_hour: float = pa.Field(ge=0.0)
    throughput_per_hour_se: float = pa.Field(ge=0.0)
    eval_seeds: str
    split: str = pa.Field(isin=list(EVAL_SPLITS))
    study: str = pa.Field(str_length={"min_value": 1})
    run_id: str
    evaluated_at: pl.Datetime(time_unit="us", time_zone="UTC")

    class Config:
        strict = True
        coerce = True
