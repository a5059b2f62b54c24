"""Writing and reading the derived tables (advantages, indicators, thresholds) in the episode store.

Their names, keys and schemas are in schemas/derived.py; rows are upserted on their key, so re-running a
stage replaces its rows instead of duplicating them. Pre-training rows use iteration -1.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl
import pyarrow as pa

from recap_core.rules.thresholds import TaskThreshold
from recap_core.steps import StepArrays
from recap_core.store import EpisodeStore
from schemas.derived import (
    ADVANTAGES,
    ADVANTAGES_ARROW_SCHEMA,
    INDICATORS,
    INDICATORS_ARROW_SCHEMA,
    STEP_KEY,
    THRESHOLDS,
    THRESHOLDS_ARROW_SCHEMA,
    THRESHOLDS_KEY,
)


def partition_filter(task: str, iteration: int) -> str:
    """The rows of one (task, iteration) partition of a derived table, as a Lance filter."""
    quoted = str(task).replace("'", "''")
    return f"task = '{quoted}' AND iteration = {int(iteration)}"


def _step_keys(steps: StepArrays, iteration: int) -> dict[str, pa.Array]:
    return {
        "task": pa.array(steps.per_step("task"), pa.string()),
        "iteration": pa.array(np.full(len(steps), iteration, np.int32)),
        "episode_id": pa.array(steps.per_step("episode_id"), pa.string()),
        "t": pa.array(steps.t.astype(np.int32)),
    }


def write_advantages(
    store: EpisodeStore,
    steps: StepArrays,
    iteration: int,
    values: np.ndarray,
    returns: np.ndarray,
    advantages: np.ndarray,
    value_sha256: str,
    versions: Mapping[str, int],
) -> int:
    table = pa.table(
        {
            **_step_keys(steps, iteration),
            "value": pa.array(values.astype(np.float32)),
            "normalised_return": pa.array(returns.astype(np.float32)),
            "advantage": pa.array(advantages.astype(np.float32)),
            "value_checkpoint_sha256": pa.array([value_sha256] * len(steps), pa.string()),
            "episodes_version": pa.array([versions.get("episodes", -1)] * len(steps), pa.int64()),
            "steps_version": pa.array([versions.get("steps", -1)] * len(steps), pa.int64()),
        },
        schema=ADVANTAGES_ARROW_SCHEMA,
    )
    return store.write_derived(ADVANTAGES, table, STEP_KEY)


def write_indicators(
    store: EpisodeStore, steps: StepArrays, iteration: int, labels: np.ndarray, mode: str, value_sha256: str
) -> int:
    table = pa.table(
        {
            **_step_keys(steps, iteration),
            "indicator": pa.array(labels.astype(bool)),
            "is_correction": pa.array(steps.is_correction.astype(bool)),
            "mode": pa.array([mode] * len(steps), pa.string()),
            "value_checkpoint_sha256": pa.array([value_sha256] * len(steps), pa.string()),
        },
        schema=INDICATORS_ARROW_SCHEMA,
    )
    return store.write_derived(INDICATORS, table, STEP_KEY)


def write_thresholds(
    store: EpisodeStore,
    iteration: int,
    thresholds: Mapping[str, TaskThreshold],
    positive_after_corrections: Mapping[str, float],
    positive_per_kind: Mapping[str, Mapping[str, float | None]],
    mode: str,
    value_sha256: str,
) -> int:
    """One row per task: eps, its population and target, and the realised shares after forcing.

    ``realised_fraction`` is measured on the population (``n_steps`` steps named by ``population``);
    ``positive_fraction`` on every labelled step; ``positive_fraction_<kind>`` per producer (null when
    the task has no steps of that kind).
    """
    rows = [
        {
            **t.to_dict(),
            "iteration": iteration,
            "mode": mode,
            "positive_fraction": float(positive_after_corrections[t.task]),
            **{f"positive_fraction_{kind}": share for kind, share in positive_per_kind[t.task].items()},
            "value_checkpoint_sha256": value_sha256,
        }
        for t in thresholds.values()
    ]
    table = pa.Table.from_pylist(rows, THRESHOLDS_ARROW_SCHEMA)
    return store.write_derived(THRESHOLDS, table, THRESHOLDS_KEY)


def read_aligned(
    store: EpisodeStore,
    table: str,
    column: str,
    steps: StepArrays,
    task: str,
    iteration: int,
    value_sha256: str | None = None,
    version: int | None = None,
    only_these_episodes: bool = False,
) -> tuple[np.ndarray, int]:
    """``column`` of a derived table for exactly ``steps``, and the table version it was read at.

    Fails naming the first episode whose rows are missing, so a policy is never trained on labels of a
    different selection of episodes; with ``value_sha256``, also fails when the rows were derived from
    another value-function checkpoint (e.g. V^k was re-trained but its advantages were not recomputed).
    ``version`` pins the table (every shard of a streamed stage reads the same labels);
    ``only_these_episodes`` reads just the rows of ``steps``' episodes (a shard) instead of the task's.
    """
    dataset = store.dataset(table, version)
    if dataset is None:
        raise ValueError(f"no {table} table in {store.uri}: materialise the stage that writes {table} first")
    version = dataset.version
    where = partition_filter(task, iteration)
    if only_these_episodes:
        quoted = ", ".join(
            "'" + str(e).replace("'", "''") + "'" for e in steps.episodes["episode_id"].to_list()
        )
        where += f" AND episode_id IN ({quoted})"
    derived = store.read_derived(table, filter=where, version=version)
    wanted = pl.DataFrame(
        {
            "episode_id": steps.per_step("episode_id"),
            "t": steps.t.astype(np.int32),
            "_row": np.arange(len(steps)),
        }
    )
    keep = ["episode_id", "t", column] + (["value_checkpoint_sha256"] if value_sha256 else [])
    joined = wanted.join(derived.select(keep), on=["episode_id", "t"], how="left")
    missing = joined.filter(pl.col(column).is_null())
    if missing.height:
        first = missing.row(0, named=True)
        raise ValueError(
            f"{table}: no {column!r} for episode {first['episode_id']} t={first['t']} "
            f"(task {task}, iteration {iteration}); materialise the stage that writes {table} first"
        )
    if value_sha256:
        stale = joined.filter(pl.col("value_checkpoint_sha256") != value_sha256)
        if stale.height:
            first = stale.row(0, named=True)
            raise ValueError(
                f"{table} (version {version}) of task {task}, iteration {iteration}: episode "
                f"{first['episode_id']} t={first['t']} was derived from value checkpoint "
                f"{first['value_checkpoint_sha256'][:12]}, not the current {value_sha256[:12]}; "
                f"re-materialise the stages after the value function"
            )
    return joined.sort("_row")[column].to_numpy(), version
