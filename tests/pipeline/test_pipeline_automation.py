"""The nightly schedule and the fleet-data sensor on a real Dagster instance (build_*_context helpers)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import dagster as dg
import pytest
from store_helpers import write_lerobot_dataset

from assets.partitions import ITERATIONS, TASKS
from assets.resources import RecapResource
from pipelines.automation import new_fleet_data, next_iteration, nightly_recap


@pytest.fixture
def instance(tmp_path):
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        yield instance


@pytest.fixture
def recap(tmp_path):
    return RecapResource(
        preset="tiny",
        tasks=["reach-v3", "push-v3"],
        store_uri=str(tmp_path / "lance"),
        checkpoint_root=str(tmp_path / "checkpoints"),
        ledger_uri=str(tmp_path / "ledger"),
        lerobot_drop_folder=str(tmp_path / "drop"),
    )


def _night(day: int) -> datetime:
    return datetime(2026, 11, day, 2, 0, tzinfo=UTC)


def _schedule(instance, recap, day: int | None = None):
    """Evaluate the schedule in a closed context (an unclosed one leaks Dagster's resource generators)."""
    extra = {"scheduled_execution_time": _night(day)} if day else {}
    with dg.build_schedule_context(instance=instance, resources={"recap": recap}, **extra) as context:
        return nightly_recap(context)


def _sensor(instance, recap, cursor: str | None = None):
    with dg.build_sensor_context(instance=instance, resources={"recap": recap}, cursor=cursor) as context:
        return new_fleet_data(context)


def _materialised(instance, key: str, partition: str | None = None) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=partition))


def test_schedule_skips_until_pretraining_exists(instance, recap):
    result = _schedule(instance, recap)
    assert isinstance(result, dg.SkipReason)
    assert "pretraining" in result.skip_message


def test_schedule_requests_iteration_zero_then_the_next_once_evaluated(instance, recap):
    _materialised(instance, "policy_pretrained")
    first = _schedule(instance, recap, 23)
    assert {r.run_key for r in first} == {"nightly-2026-11-23:push-v3:0", "nightly-2026-11-23:reach-v3:0"}
    assert sorted(r.partition_key for r in first) == ["0|push-v3", "0|reach-v3"]
    assert instance.get_dynamic_partitions(ITERATIONS.name) == ["0"]
    assert set(instance.get_dynamic_partitions(TASKS.name)) == {"push-v3", "reach-v3"}

    # Only one task finished iteration 0: tonight re-runs iteration 0, it does not skip ahead.
    instance.add_dynamic_partitions(ITERATIONS.name, ["0"])
    _materialised(instance, "evaluation", "0|reach-v3")
    again = _schedule(instance, recap, 24)
    assert sorted(r.partition_key for r in again) == ["0|push-v3", "0|reach-v3"]

    _materialised(instance, "evaluation", "0|push-v3")
    assert next_iteration(instance, ["push-v3", "reach-v3"]) == 1
    nxt = _schedule(instance, recap, 25)
    assert sorted(r.partition_key for r in nxt) == ["1|push-v3", "1|reach-v3"]
    assert instance.get_dynamic_partitions(ITERATIONS.name) == ["0", "1"]


def test_sensor_adds_the_next_iteration_for_new_fleet_datasets(instance, recap, tmp_path):
    assert isinstance(_sensor(instance, recap), dg.SkipReason)

    dataset = tmp_path / "drop" / "station-7-2026-11-23"
    write_lerobot_dataset(dataset, [12, 9, 15])
    (dataset / "recap_import.json").write_text(
        json.dumps({"task": "drawer-station-7", "kind": "autonomous", "success_column": "next.success"})
    )
    result = _sensor(instance, recap)
    assert [r.partition_key for r in result.run_requests] == ["0|drawer-station-7"]
    added = {req.partitions_def_name: req.partition_keys for req in result.dynamic_partitions_requests}
    assert added == {"task": ["drawer-station-7"], "iteration": ["0"]}
    assert json.loads(result.cursor) == ["station-7-2026-11-23"]

    # The same dataset is not announced twice.
    assert isinstance(_sensor(instance, recap, result.cursor), dg.SkipReason)


def test_sensor_refuses_a_dataset_without_import_options(instance, recap, tmp_path):
    write_lerobot_dataset(tmp_path / "drop" / "mystery", [5])
    with pytest.raises(Exception, match=r"mystery: no recap_import\.json"):
        _sensor(instance, recap)


def test_next_iteration_is_the_oldest_one_not_evaluated_everywhere(instance):
    instance.add_dynamic_partitions(ITERATIONS.name, ["0", "1", "2"])  # an interrupted run registered 3
    _materialised(instance, "evaluation", "0|reach-v3")
    assert next_iteration(instance, ["reach-v3"]) == 1
    _materialised(instance, "evaluation", "1|reach-v3")
    _materialised(instance, "evaluation", "2|reach-v3")
    assert next_iteration(instance, ["reach-v3"]) == 3


def test_every_asset_check_is_described_and_correctness_checks_block():
    from pipelines.definitions import ALL_ASSETS

    specs = {
        spec.name + "@" + spec.asset_key.to_user_string(): spec for a in ALL_ASSETS for spec in a.check_specs
    }
    assert len(specs) == 8
    assert all(spec.description for spec in specs.values()), [
        k for k, s in specs.items() if not s.description
    ]
    blocking = {key for key, spec in specs.items() if spec.blocking}
    assert blocking == {
        "episodes_schema_valid@demonstrations",
        "episodes_schema_valid@experience",
        "corrections_labelled_positive@indicators",
        "baselines_share_pi_k_data@baselines",
    }
