"""The metrics ledger on a real Delta table: upsert on the natural key, validation before writing."""

from __future__ import annotations

from datetime import UTC, datetime

import pandera.errors
import pytest

from recap_core.ledger import read_ledger, record_evaluations


def _row(**overrides):
    row = {
        "task": "push-v3",
        "iteration": 1,
        "method": "recap",
        "policy_checkpoint": "/ckpt/policy/push-v3/1",
        "policy_sha256": "abc123",
        "policy_weights_sha256": "w-abc123",
        "beta": 2.0,
        "lookahead": 50,
        "episodes": 20,
        "success_rate": 0.55,
        "success_rate_se": 0.11,
        "mean_duration_s": 1.9,
        "mean_duration_s_se": 0.2,
        "throughput_per_hour": 410.0,
        "throughput_per_hour_se": 60.0,
        "eval_seeds": "2000000-2000019",
        "split": "test",
        "study": "default",
        "run_id": "run-a",
        "evaluated_at": datetime(2026, 11, 23, tzinfo=UTC),
    }
    row.update(overrides)
    return row


def test_reevaluating_the_same_policy_replaces_its_row(tmp_path):
    uri = tmp_path / "metrics"
    v0 = record_evaluations(
        uri, [_row(), _row(method="sft", policy_sha256="def456", policy_weights_sha256="w-def456")]
    )
    # the same weights re-saved (a new created_at, so a new checkpoint sha256) are the same policy
    v1 = record_evaluations(uri, [_row(success_rate=0.6, run_id="run-b", policy_sha256="resaved")])
    ledger = read_ledger(uri)
    assert v1 == v0 + 1
    assert ledger.height == 2
    recap = ledger.filter(method="recap")
    assert recap["success_rate"].to_list() == [0.6]
    assert recap["run_id"].to_list() == ["run-b"]
    assert read_ledger(uri, version=v0).filter(method="recap")["success_rate"].to_list() == [0.55]


def test_the_same_weights_at_two_betas_are_two_rows(tmp_path):
    """beta is part of what a policy is: re-evaluating at another guidance weight used to overwrite the
    row of the first, so the ledger could not hold pi^k at beta = 1 beside pi^k at beta = 2."""
    uri = tmp_path / "metrics"
    record_evaluations(uri, [_row(beta=2.0, success_rate=0.5)])
    record_evaluations(uri, [_row(beta=1.0, success_rate=0.3)])
    record_evaluations(uri, [_row(beta=2.0, success_rate=0.6)])  # the same weights and beta: replaced
    ledger = read_ledger(uri).sort("beta")
    assert ledger.select("beta", "success_rate", "lookahead").rows() == [(1.0, 0.3, 50), (2.0, 0.6, 50)]


def test_a_bad_row_writes_nothing(tmp_path):
    uri = tmp_path / "metrics"
    version = record_evaluations(uri, [_row()])
    with pytest.raises(pandera.errors.SchemaError, match="success_rate"):
        record_evaluations(
            uri, [_row(policy_weights_sha256="x"), _row(policy_weights_sha256="y", success_rate=1.7)]
        )
    ledger = read_ledger(uri)
    assert ledger.height == 1
    from deltalake import DeltaTable

    assert DeltaTable(str(uri)).version() == version


def test_missing_ledger_reads_empty_with_schema(tmp_path):
    ledger = read_ledger(tmp_path / "nothing")
    assert ledger.height == 0
    assert "throughput_per_hour" in ledger.columns


def _upsert_many(uri: str, method: str, count: int) -> None:
    for i in range(count):
        record_evaluations(uri, [_row(method=method, policy_weights_sha256=f"{method}-{i}")])


def test_two_processes_recording_at_once_both_land(tmp_path):
    import multiprocessing

    uri = str(tmp_path / "metrics")
    record_evaluations(uri, [_row()])
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_upsert_many, args=(uri, m, 6)) for m in ("sft", "awr")]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]
    assert read_ledger(uri).height == 1 + 12


def test_splits_are_separate_rows_and_old_rows_read_as_validation(tmp_path):
    import polars as pl
    from deltalake import write_deltalake

    from recap_core.ledger import newest_evaluations

    uri = tmp_path / "metrics"
    old = pl.DataFrame([_row(eval_seeds="1000000-1000019")]).drop(
        "split", "study", "policy_weights_sha256", "beta", "lookahead"
    )
    write_deltalake(str(uri), old.to_arrow())
    assert read_ledger(uri)["split"].to_list() == ["validation"]
    record_evaluations(uri, [_row(success_rate=0.7)])  # the same policy on test seeds: its own row
    record_evaluations(uri, [_row(success_rate=0.8)])  # re-evaluated on test seeds: replaces that row
    ledger = read_ledger(uri)
    assert sorted(zip(ledger["split"], ledger["success_rate"], strict=True)) == [
        ("test", 0.8),
        ("validation", 0.55),
    ]
    assert newest_evaluations(ledger, "test")["success_rate"].to_list() == [0.8]
    # the old row gained the columns it lacked, unrecorded (null), and keeps its own key
    assert ledger.sort("split")["beta"].to_list() == [2.0, None]
    with pytest.raises(pandera.errors.SchemaError, match="split"):
        record_evaluations(uri, [_row(split="train")])
