"""The episode store and the metrics ledger on s3:// URIs, against an S3-compatible server the suite
starts itself (moto): same validation, idempotence and atomicity as on a local disk (concurrent
writers: test_store_concurrent_writers.py)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest
from paths import TESTS
from store_helpers import make_episode

from recap_core.ledger import read_ledger, record_evaluations
from recap_core.store import EpisodeStore
from recap_core.store.errors import EpisodeValidationError


def test_ingest_and_reads_on_s3_match_the_local_store(s3, tmp_path):
    episodes = [make_episode(i, length=10 + i) for i in range(6)]
    remote, local = EpisodeStore("s3://recap/ingest"), EpisodeStore(tmp_path / "lance")
    for store in (remote, local):
        assert len(store.add_episodes(episodes[:4]).added) == 4
        assert store.add_episodes(episodes).added == [e.episode_id for e in episodes[4:]]  # idempotent
    assert remote.table_names() == ["episode_contents", "episodes", "steps"]  # listed on S3 as on disk
    a, b = remote.load_steps(), local.load_steps()
    assert a.episodes["episode_id"].to_list() == b.episodes["episode_id"].to_list()
    np.testing.assert_array_equal(a.observations, b.observations)
    np.testing.assert_array_equal(a.actions, b.actions)
    # a bad batch is refused whole and nothing of it is written
    bad = make_episode(99, length=5)
    bad.observations[2, 0] = np.nan
    versions = remote.versions()
    with pytest.raises(EpisodeValidationError, match="observation"):
        remote.add_episodes([make_episode(98), bad])
    assert remote.versions() == versions


def test_derived_tables_and_the_ledger_on_s3(s3):
    store = EpisodeStore("s3://recap/derived")
    store.add_episodes([make_episode(i) for i in range(3)])
    steps = store.load_steps()
    table = pl.DataFrame(
        {
            "episode_id": steps.per_step("episode_id"),
            "t": steps.t.astype(np.int32),
            "value": np.zeros(len(steps)),
        }
    ).to_arrow()
    store.write_derived("values", table, ["episode_id", "t"])
    assert "values" in store.table_names()
    assert store.read_derived("values").height == len(steps)

    row = {
        "study": "default", "task": "reach-v3", "iteration": 0, "method": "recap", "policy_checkpoint": "p",
        "policy_sha256": "a" * 64, "policy_weights_sha256": "b" * 64, "beta": 1.0, "lookahead": 50,
       "episodes": 10, "success_rate": 0.5,
        "success_rate_se": 0.1, "mean_duration_s": 1.0, "mean_duration_s_se": 0.1,
        "throughput_per_hour": 100.0, "throughput_per_hour_se": 10.0, "eval_seeds": "2000000-2000009",
        "split": "test", "run_id": "run-a", "evaluated_at": datetime(2026, 11, 24, tzinfo=UTC),
    }  # fmt: skip
    uri = "s3://recap/ledger/metrics"
    record_evaluations(uri, [row])
    record_evaluations(uri, [{**row, "success_rate": 0.6, "run_id": "run-b"}])  # re-evaluated: one row
    ledger = read_ledger(uri)
    assert ledger.height == 1 and ledger["success_rate"][0] == 0.6


CRASH_BETWEEN_STEPS_AND_EPISODES = r"""
import os, sys
sys.path.insert(0, sys.argv[2])
from store_helpers import make_episode
from recap_core.store import EpisodeStore
from recap_core.store.batch import build_batch

store = EpisodeStore(sys.argv[1])
batch = build_batch([make_episode(i, length=30) for i in range(100, 104)])
store._upsert("steps", batch.steps, ["episode_id", "t"], update_matched=True)  # the steps land ...
os._exit(9)  # ... and the writer dies before the episode rows, the commit point, are written
"""


def test_a_writer_that_dies_mid_ingest_leaves_no_half_written_episode(s3):
    uri = "s3://recap/crash"
    store = EpisodeStore(uri)
    store.add_episodes([make_episode(i) for i in range(3)])
    before = store.load_steps()
    tests_dir = str(TESTS)
    crashed = subprocess.run([sys.executable, "-c", CRASH_BETWEEN_STEPS_AND_EPISODES, uri, tests_dir])
    assert crashed.returncode == 9
    after = store.load_steps()
    assert after.episodes["episode_id"].to_list() == before.episodes["episode_id"].to_list()
    assert len(after) == len(before), "the dead writer's steps are invisible to readers"
    # the retry completes the ingest: every episode once, with exactly its steps
    retried = store.add_episodes([make_episode(i, length=30) for i in range(100, 104)])
    assert len(retried.added) == 4
    assert store.episodes().frame.height == 7 and len(store.load_steps()) == len(before) + 4 * 30
