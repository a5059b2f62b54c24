"""The derived tables: what the labelling stages, the collectors and the fleet sensor write beside the
episodes, each with its name, its key and its Arrow schema.

Per-step tables (advantages, indicators) are keyed by (task, iteration, episode_id, t) and upserted, so
re-running a stage replaces its rows instead of duplicating them; pre-training rows use iteration -1.
Every row names the value-function checkpoint that produced it.
"""

from __future__ import annotations

import pyarrow

ADVANTAGES = "advantages"
INDICATORS = "indicators"
THRESHOLDS = "thresholds"
ROLLOUT_SEEDS = "rollout_seeds"  # which initial states of an iteration's rollouts are collected
FLEET_IMPORTS = "fleet_imports"  # which dropped LeRobot datasets were ingested, into which iteration
# (the dataset column: its folder name, or "<name>/<task>" per task of a dataset of several tasks)
PRETRAINING_ITERATION = -1

STEP_KEY = ["task", "iteration", "episode_id", "t"]
THRESHOLDS_KEY = ["task", "iteration"]
ROLLOUT_SEEDS_KEY = ["task", "iteration", "seed"]
FLEET_IMPORTS_KEY = ["dataset"]

STEP_KINDS = ("demo", "autonomous", "correction")
"""Who produced a step, for the positive share per kind: the operator's demonstration, the policy alone,
or a human's correction inside an intervention episode."""

_STEP_KEY_FIELDS = [
    pyarrow.field("task", pyarrow.string()),
    pyarrow.field("iteration", pyarrow.int32()),
    pyarrow.field("episode_id", pyarrow.string()),
    pyarrow.field("t", pyarrow.int32()),
]

ADVANTAGES_ARROW_SCHEMA = pyarrow.schema(
    [
        *_STEP_KEY_FIELDS,
        pyarrow.field("value", pyarrow.float32()),
        pyarrow.field("normalised_return", pyarrow.float32()),
        pyarrow.field("advantage", pyarrow.float32()),
        pyarrow.field("value_checkpoint_sha256", pyarrow.string()),
        pyarrow.field("episodes_version", pyarrow.int64()),
        pyarrow.field("steps_version", pyarrow.int64()),
    ]
)

INDICATORS_ARROW_SCHEMA = pyarrow.schema(
    [
        *_STEP_KEY_FIELDS,
        pyarrow.field("indicator", pyarrow.bool_()),
        pyarrow.field("is_correction", pyarrow.bool_()),
        pyarrow.field("mode", pyarrow.string()),
        pyarrow.field("value_checkpoint_sha256", pyarrow.string()),
    ]
)

# One row per task and iteration. Its text columns are large_string: the type its first writer (a polars
# frame) gave every stored table, which a later write must match.
THRESHOLDS_ARROW_SCHEMA = pyarrow.schema(
    [
        pyarrow.field("task", pyarrow.large_string()),
        pyarrow.field("threshold", pyarrow.float64()),
        pyarrow.field("target_fraction", pyarrow.float64()),
        pyarrow.field("realised_fraction", pyarrow.float64()),
        pyarrow.field("n_steps", pyarrow.int64()),
        pyarrow.field("population", pyarrow.large_string()),
        pyarrow.field("iteration", pyarrow.int32()),
        pyarrow.field("mode", pyarrow.large_string()),
        pyarrow.field("positive_fraction", pyarrow.float64()),
        *(pyarrow.field(f"positive_fraction_{kind}", pyarrow.float64()) for kind in STEP_KINDS),
        pyarrow.field("value_checkpoint_sha256", pyarrow.large_string()),
    ]
)

ROLLOUT_SEEDS_ARROW_SCHEMA = pyarrow.schema(
    [
        pyarrow.field("task", pyarrow.string()),
        pyarrow.field("iteration", pyarrow.int32()),
        pyarrow.field("seed", pyarrow.int64()),
        pyarrow.field("episode_id", pyarrow.string()),
        pyarrow.field("collected_by", pyarrow.string()),
    ]
)

FLEET_IMPORTS_ARROW_SCHEMA = pyarrow.schema(
    [
        pyarrow.field("dataset", pyarrow.string()),
        pyarrow.field("task", pyarrow.string()),
        pyarrow.field("iteration", pyarrow.int32()),
        pyarrow.field("episodes", pyarrow.int64()),
        pyarrow.field("ingested_at", pyarrow.timestamp("us", tz="UTC")),
    ]
)
