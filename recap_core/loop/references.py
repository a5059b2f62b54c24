"""Every checkpoint a study's stored rows name: what must never be deleted, and what must resolve.

Rollouts name the policy that collected them (episodes' and rollout_seeds' ``collected_by``,
"policy:<task>/<slot>@<sha12>"), derived rows the value function that labelled them
(``value_checkpoint_sha256``), ledger rows the policy they evaluated (``policy_sha256``).
"""

from __future__ import annotations

import re
from collections import defaultdict

import polars as pl

from recap_core.ledger import read_ledger
from recap_core.loop.context import RunContext
from schemas.derived import ADVANTAGES, INDICATORS, ROLLOUT_SEEDS, THRESHOLDS

_POLICY_LABEL = re.compile(r"^policy:[^@]+@([0-9a-f]{6,64})$")


def referenced_checkpoints(ctx: RunContext) -> dict[str, set[str]]:
    """checkpoint name (sha256, or the prefix a collected_by label holds) -> the tables that name it."""
    names: dict[str, set[str]] = defaultdict(set)
    store = ctx.store
    tables = set(store.table_names())
    if "episodes" in tables:
        for label in store.lazy("episodes").select("collected_by").unique().collect()["collected_by"]:
            if match := _POLICY_LABEL.match(label or ""):
                names[match.group(1)].add("episodes.collected_by")
    if ROLLOUT_SEEDS in tables:
        for label in store.read_derived(ROLLOUT_SEEDS)["collected_by"].unique().to_list():
            if match := _POLICY_LABEL.match(label or ""):
                names[match.group(1)].add(f"{ROLLOUT_SEEDS}.collected_by")
    for table in (ADVANTAGES, INDICATORS, THRESHOLDS):
        if table in tables:
            frame = store.lazy(table).select("value_checkpoint_sha256").unique().collect()
            for sha in frame["value_checkpoint_sha256"].drop_nulls().to_list():
                names[sha].add(f"{table}.value_checkpoint_sha256")
    ledger = read_ledger(ctx.ledger_uri).filter(pl.col("study") == ctx.study)
    for sha in ledger["policy_sha256"].drop_nulls().unique().to_list():
        names[sha].add("ledger.policy_sha256")
    return dict(names)
