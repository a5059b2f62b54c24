"""Per-episode evaluation outcomes in Delta Lake, beside the metrics ledger, and the ledger row computed
from them.

Every evaluation writes its episodes here before its aggregate reaches the ledger, so a ledger row
always has its episodes (the report pairs two policies seed by seed from them), and the aggregate is
computed from exactly the rows stored, never from a second copy of the numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from recap_core.delta_upsert import upsert_rows
from recap_core.extraction import LEDGER_METHODS
from recap_core.locations import outcomes_uri
from recap_core.object_storage import delta_storage_options
from recap_core.seeds import EVAL_SPLITS
from recap_core.sim.evaluation import EvalResult, summarize
from schemas.metrics import METRICS_KEY
from schemas.outcomes import OUTCOMES_ARROW_SCHEMA, OUTCOMES_KEY, outcomes_validation_schema

OUTCOMES_SCHEMA = outcomes_validation_schema(LEDGER_METHODS, EVAL_SPLITS)
# What ties an evaluation's episodes to its ledger row: the ledger's key and the evaluation's time.
EVALUATION_KEY = METRICS_KEY


@dataclass(frozen=True)
class EpisodeOutcome:
    """One evaluation episode as the simulator (or a robot) ended it."""

    seed: int
    success: bool
    steps: int


def outcome_rows(
    evaluation: Mapping[str, Any],
    episodes: Sequence[EpisodeOutcome],
    *,
    control_period_s: float,
    reset_s: float,
) -> list[dict[str, Any]]:
    """The rows of one evaluation's episodes; ``evaluation`` holds the ledger row's key columns,
    policy_sha256, run_id and evaluated_at."""
    if not episodes:
        raise ValueError(f"evaluation of {evaluation.get('task')!r}: no episodes to record")
    shared = {name: evaluation[name] for name in (*EVALUATION_KEY, "policy_sha256", "run_id", "evaluated_at")}
    return [
        shared
        | {
            "seed": int(e.seed),
            "success": bool(e.success),
            "steps": int(e.steps),
            "duration_s": int(e.steps) * control_period_s,
            "reset_s": float(reset_s),
        }
        for e in episodes
    ]


def record_outcomes(ledger_uri: str | Path, rows: Iterable[Mapping[str, Any]]) -> int:
    """Upsert outcome rows (validated first: a bad row writes nothing); the table's new version."""
    overrides = {"iteration": pl.Int32, "steps": pl.Int32, "seed": pl.Int64, "beta": pl.Float64}
    frame = pl.DataFrame(list(rows), schema_overrides=overrides)
    frame = OUTCOMES_SCHEMA.validate(frame.select([f.name for f in OUTCOMES_ARROW_SCHEMA]))
    return upsert_rows(outcomes_uri(ledger_uri), frame.to_arrow().cast(OUTCOMES_ARROW_SCHEMA), OUTCOMES_KEY)


def read_outcomes(ledger_uri: str | Path, version: int | None = None) -> pl.DataFrame:
    """Every stored outcome (optionally at an earlier Delta version); empty with the schema if none."""
    uri = outcomes_uri(ledger_uri)
    try:
        table = DeltaTable(uri, version=version, storage_options=delta_storage_options(uri))
    except TableNotFoundError:
        return pl.from_arrow(OUTCOMES_ARROW_SCHEMA.empty_table())
    return pl.from_arrow(table.to_pyarrow_table())


def outcomes_version(ledger_uri: str | Path) -> int | None:
    """The outcomes table's current version (what a report pins), None when no evaluation wrote one."""
    uri = outcomes_uri(ledger_uri)
    try:
        return DeltaTable(uri, storage_options=delta_storage_options(uri)).version()
    except TableNotFoundError:
        return None


def summarize_outcomes(task: str, rows: pl.DataFrame) -> EvalResult:
    """The ledger's aggregate of one evaluation, from its outcome rows."""
    periods = set((rows["duration_s"] / rows["steps"]).round(9).to_list())
    resets = set(rows["reset_s"].to_list())
    if len(periods) != 1 or len(resets) != 1:
        raise ValueError(
            f"task {task}: one evaluation's episodes must share one control period and one reset time, "
            f"got periods {sorted(periods)} and resets {sorted(resets)}"
        )
    return summarize(
        task,
        rows["steps"].to_list(),
        rows["success"].to_list(),
        control_period=float(rows["duration_s"][0] / rows["steps"][0]),
        reset_seconds=resets.pop(),
    )


def stored_evaluation_outcomes(ledger_uri: str | Path, row: Mapping[str, Any]) -> pl.DataFrame:
    """The episodes of one evaluation as stored, read with its key pushed down to the scan (an
    evaluation reads back only its own rows, not the table's history)."""
    uri = outcomes_uri(ledger_uri)
    dataset = DeltaTable(uri, storage_options=delta_storage_options(uri)).to_pyarrow_dataset()
    condition = pc.field("evaluated_at") == pa.scalar(row["evaluated_at"], pa.timestamp("us", tz="UTC"))
    for name in EVALUATION_KEY:
        condition &= pc.field(name) == row[name]
    return evaluation_outcomes(pl.from_arrow(dataset.to_table(filter=condition)), row)


def evaluation_outcomes(outcomes: pl.DataFrame, row: Mapping[str, Any]) -> pl.DataFrame:
    """The episodes of the evaluation behind one ledger row (its key and its time), sorted by seed."""
    match = {name: row[name] for name in EVALUATION_KEY}
    evaluated_at: datetime = row["evaluated_at"]
    return outcomes.filter(**match).filter(pl.col("evaluated_at") == evaluated_at).sort("seed")
