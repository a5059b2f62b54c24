"""Concurrent ingesting writers on S3 (the suite's moto server), with no lock: every episode, step,
derived row and ledger row is stored exactly once and exactly one writer reports each episode as added
(test_store_concurrency.py races two writers on a local disk). Tables written before tables declared
their keys are upgraded in place."""

from __future__ import annotations

import json
import subprocess
import sys

import lance
import pytest
from paths import TESTS as TESTS_FOLDER
from store_helpers import make_episode

from recap_core.ledger import read_ledger
from recap_core.store import EpisodeStore
from recap_core.store.batch import build_batch
from recap_core.store.primary_keys import declared_primary_key

TESTS = str(TESTS_FOLDER)
LENGTH = 20

# Ingests episodes [first, first + 40) in batches of 5, writes one derived row per step of them, and
# records two ledger rows: one of its own and one every writer records under the same key.
WRITER = r"""
import json, sys
from datetime import UTC, datetime
import polars as pl
sys.path.insert(0, sys.argv[4])
from store_helpers import make_episode
from recap_core.ledger import record_evaluations
from recap_core.store import EpisodeStore

uri, ledger, first = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = EpisodeStore(uri)
added, concurrent = [], []
for start in range(first, first + 40, 5):
    result = store.add_episodes([make_episode(i, length=20) for i in range(start, start + 5)])
    added += result.added
    concurrent += result.stored_concurrently
ids = [make_episode(i, length=20).episode_id for i in range(first, first + 40)]
derived = pl.DataFrame({"episode_id": [e for e in ids for _ in range(20)], "t": list(range(20)) * 40,
                        "value": [float(first)] * 800}, schema_overrides={"t": pl.Int32}).to_arrow()
store.write_derived("values", derived, ["episode_id", "t"])
row = {"study": "default", "task": "reach-v3", "iteration": 0, "policy_checkpoint": "p",
       "policy_sha256": "a" * 64, "policy_weights_sha256": "b" * 64, "beta": 1.0, "lookahead": 50,
       "episodes": 10, "success_rate": 0.5,
       "success_rate_se": 0.1, "mean_duration_s": 1.0, "mean_duration_s_se": 0.1,
       "throughput_per_hour": 100.0, "throughput_per_hour_se": 10.0, "eval_seeds": "0-9", "split": "test",
       "run_id": f"writer-{first}", "evaluated_at": datetime(2026, 12, 1, tzinfo=UTC)}
record_evaluations(ledger, [{**row, "method": {0: "sft", 20: "awr"}[first]}, {**row, "method": "recap"}])
print(json.dumps({"added": added, "concurrent": concurrent}))
"""


def _race(uri: str, ledger: str) -> list[dict]:
    """Two writers over overlapping episodes: 0-39 and 20-59."""
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, uri, ledger, str(first), TESTS],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for first in (0, 20)
    ]
    outputs = [writer.communicate(timeout=600) for writer in writers]
    for writer, (_, err) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, err[-3000:]
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]


def _assert_stored_exactly_once(store: EpisodeStore, reports: list[dict], ledger: str) -> None:
    expected = {make_episode(i, length=LENGTH).episode_id for i in range(60)}
    stored = store.episodes().frame["episode_id"].to_list()
    assert len(stored) == 60 and set(stored) == expected, "every episode once"
    raw_steps = lance.dataset(store.table_uri("steps"), storage_options=store.storage_options)
    keys = raw_steps.to_table(columns=["episode_id", "t"])
    assert keys.num_rows == 60 * LENGTH, "no step written twice, even those of the contested episodes"
    assert len(store.load_steps()) == 60 * LENGTH
    values = store.read_derived("values")
    assert values.height == 60 * LENGTH and values.select("episode_id", "t").is_unique().all()
    added = [report["added"] for report in reports]
    assert sorted(added[0] + added[1]) == sorted(expected), "each episode reported added by one writer"
    for report, other in ((reports[0], reports[1]), (reports[1], reports[0])):
        assert set(report["concurrent"]) <= set(other["added"])
    assert sorted(read_ledger(ledger)["method"].to_list()) == ["awr", "recap", "sft"]


@pytest.mark.parametrize("attempt", [0, 1])
def test_concurrent_writers_on_s3_store_everything_exactly_once(s3, attempt):
    uri, ledger = f"s3://recap/concurrent-{attempt}", f"s3://recap/concurrent-{attempt}-ledger"
    reports = _race(uri, ledger)
    _assert_stored_exactly_once(EpisodeStore(uri), reports, ledger)


def test_tables_written_before_keys_were_declared_get_them_on_the_next_write(tmp_path):
    store = EpisodeStore(tmp_path / "lance")
    old = build_batch([make_episode(i) for i in range(3)])
    for name, table in (("steps", old.steps), ("episodes", old.episodes)):  # as earlier releases wrote
        lance.write_dataset(table, store.table_uri(name), schema=table.schema, mode="create")
        assert declared_primary_key(lance.dataset(store.table_uri(name)).schema) == []
    before = store.load_steps()
    assert len(store.add_episodes([make_episode(i) for i in range(5)]).added) == 2
    for name, keys in (("episodes", ["episode_id"]), ("steps", ["episode_id", "t"])):
        assert declared_primary_key(lance.dataset(store.table_uri(name)).schema) == keys
    assert len(store.load_steps()) == len(before) + 2 * 12
    assert store.episodes().frame.height == 5


def test_a_derived_key_with_nulls_is_refused_by_name(tmp_path):
    import pyarrow

    store = EpisodeStore(tmp_path / "lance")
    table = pyarrow.table({"episode_id": ["a", None], "t": pyarrow.array([0, 1], pyarrow.int32())})
    with pytest.raises(ValueError, match="'episode_id' holds 1 null"):
        store.write_derived("values", table, ["episode_id", "t"])
    assert "values" not in store.table_names()
