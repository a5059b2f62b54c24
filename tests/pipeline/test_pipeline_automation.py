"""The nightly schedule and the fleet-data sensor on a real Dagster instance (build_*_context helpers)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import dagster as dg
import pytest
from store_helpers import write_lerobot_dataset

from assets.partitions import ITERATIONS, TASKS, next_iteration
from assets.resources import RecapResource
from pipelines.automation import new_fleet_data, nightly_recap, partitions_in_progress, runnable_tasks
from pipelines.definitions import defs
from pipelines.jobs import iteration_job


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


def _demos(recap: RecapResource, *tasks: str) -> None:
    from store_helpers import make_episode

    recap.store().add_episodes(
        [make_episode(i, length=5, task=task) for i, task in enumerate(tasks)]  # demonstrations
    )


def test_schedule_requests_each_tasks_own_next_iteration(instance, recap):
    _materialised(instance, "policy_pretrained")
    _demos(recap, "reach-v3", "push-v3")
    first = _schedule(instance, recap, 23)
    assert {r.run_key for r in first} == {"nightly-2026-11-23:push-v3:0", "nightly-2026-11-23:reach-v3:0"}
    assert sorted(r.partition_key for r in first) == ["0|push-v3", "0|reach-v3"]
    assert instance.get_dynamic_partitions(ITERATIONS.name) == ["0"]
    assert set(instance.get_dynamic_partitions(TASKS.name)) == {"push-v3", "reach-v3"}

    # Only one task finished iteration 0: it moves on, the other one finishes iteration 0. An evaluated
    # partition is never requested again (it used to be: the next iteration was shared by every task).
    _materialised(instance, "evaluation", "0|reach-v3")
    again = _schedule(instance, recap, 24)
    assert sorted(r.partition_key for r in again) == ["0|push-v3", "1|reach-v3"]

    _materialised(instance, "evaluation", "0|push-v3")
    assert (next_iteration(instance, "push-v3"), next_iteration(instance, "reach-v3")) == (1, 1)
    nxt = _schedule(instance, recap, 25)
    assert sorted(r.partition_key for r in nxt) == ["1|push-v3", "1|reach-v3"]
    assert instance.get_dynamic_partitions(ITERATIONS.name) == ["0", "1"]


def test_after_a_single_task_iterate_the_tick_requests_only_unevaluated_iterations(instance, recap):
    """`recap iterate --task push-v3 --iteration 3` ran ahead of reach-v3: the tick used to request
    3|push-v3 again along with 3|drawer-open-v3. Now: 4 for push-v3, and reach-v3's own next one."""
    _materialised(instance, "policy_pretrained")
    _demos(recap, "reach-v3", "push-v3")
    for iteration in range(4):
        _materialised(instance, "evaluation", f"{iteration}|push-v3")
    _materialised(instance, "evaluation", "0|reach-v3")
    tick = _schedule(instance, recap, 26)
    assert sorted(r.partition_key for r in tick) == ["1|reach-v3", "4|push-v3"]


def test_a_tick_never_requests_a_partition_whose_run_is_still_queued_or_running(instance, recap):
    """A tick that came before the previous tick's run of a task had ended asked for that task's iteration
    again (it is not evaluated yet, so it is still the next one): two runs of one partition. It now
    leaves it to that run; a run that has ended (here: failed) does not hold the partition."""
    _materialised(instance, "policy_pretrained")
    _demos(recap, "reach-v3", "push-v3")
    _materialised(instance, "evaluation", "0|push-v3")

    job = defs.resolve_job_def(iteration_job.name)

    def run_of(partition: str, status: dg.DagsterRunStatus) -> dg.DagsterRun:
        return instance.create_run_for_job(job, tags={"dagster/partition": partition}, status=status)

    queued = run_of("0|reach-v3", dg.DagsterRunStatus.NOT_STARTED)  # created, not yet launched
    assert partitions_in_progress(instance) == {"0|reach-v3": queued.run_id}
    assert [r.partition_key for r in _schedule(instance, recap, 28)] == ["1|push-v3"]
    instance.report_run_failed(queued)
    assert sorted(r.partition_key for r in _schedule(instance, recap, 29)) == ["0|reach-v3", "1|push-v3"]
    running = run_of("1|push-v3", dg.DagsterRunStatus.STARTED)
    again = run_of("0|reach-v3", dg.DagsterRunStatus.STARTING)
    skip = _schedule(instance, recap, 30)
    assert isinstance(skip, dg.SkipReason)
    assert f"1|push-v3 is already queued or running (run {running.run_id})" in skip.skip_message
    assert f"0|reach-v3 is already queued or running (run {again.run_id})" in skip.skip_message


def test_a_typo_added_in_the_ui_is_skipped_with_a_warning_and_derails_nothing(instance, recap, capfd):
    """The launch dialog's "Add a partition" accepted psh-v3, and the next tick requested iteration 0 of
    every task again. A task partition that cannot run is now skipped, named, and the others go on."""
    _materialised(instance, "policy_pretrained")
    _demos(recap, "reach-v3", "push-v3")
    for task in ("reach-v3", "push-v3"):
        _materialised(instance, "evaluation", f"0|{task}")
    instance.add_dynamic_partitions(TASKS.name, ["psh-v3", "Bad|Name", "drawer-open-v3"])
    capfd.readouterr()
    tick = _schedule(instance, recap, 27)
    assert sorted(r.partition_key for r in tick) == ["1|push-v3", "1|reach-v3"]
    warning = capfd.readouterr().err  # the schedule's log, shown on the tick in the UI
    assert "WARNING" in warning
    assert "task partition 'psh-v3' skipped: neither a simulated task nor one with stored" in warning
    plan, skipped = runnable_tasks(instance, recap, ["psh-v3", "Bad|Name", "drawer-open-v3", "push-v3"])
    assert plan == {"push-v3": 1}
    assert skipped == {
        "Bad|Name": "not a task name (1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a "
        "letter or digit)",
        "drawer-open-v3": "no demonstrations for its iteration 0: run the pretraining job with it",
        "psh-v3": "neither a simulated task nor one with stored episodes",
    }


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


def test_next_iteration_is_one_past_the_tasks_newest_evaluated_one(instance):
    instance.add_dynamic_partitions(ITERATIONS.name, ["0", "1", "2"])  # an interrupted run registered 3
    assert next_iteration(instance, "reach-v3") == 0
    _materialised(instance, "evaluation", "0|reach-v3")
    assert next_iteration(instance, "reach-v3") == 1
    _materialised(instance, "evaluation", "1|reach-v3")
    _materialised(instance, "evaluation", "2|reach-v3")
    assert next_iteration(instance, "reach-v3") == 3
    assert next_iteration(instance, "push-v3") == 0, "another task advances on its own"


def test_every_asset_check_is_described_and_correctness_checks_block():
    from pipelines.definitions import ALL_ASSETS

    specs = {
        spec.name + "@" + spec.asset_key.to_user_string(): spec
        for a in ALL_ASSETS
        if isinstance(a, dg.AssetsDefinition)  # not the external collecting_policy
        for spec in a.check_specs
    }
    assert len(specs) == 9
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


def test_partitions_are_listed_with_what_the_schedule_does_and_a_typo_can_be_removed(instance, recap):
    from pipelines.partitions_report import partitions_report, remove_dynamic_partition

    _demos(recap, "reach-v3")
    instance.add_dynamic_partitions(TASKS.name, ["psh-v3", "reach-v3"])
    instance.add_dynamic_partitions(ITERATIONS.name, ["0"])
    _materialised(instance, "evaluation", "0|reach-v3")
    report = partitions_report(instance, recap, runnable_tasks)
    assert report["iterations"] == ["0"]
    assert report["tasks"]["reach-v3"] == {"evaluated": [0], "next": 1, "skipped": None}
    assert report["tasks"]["psh-v3"]["next"] is None
    assert "neither a simulated task" in report["tasks"]["psh-v3"]["skipped"]
    assert remove_dynamic_partition(instance, task="psh-v3") == "task=psh-v3"
    assert instance.get_dynamic_partitions(TASKS.name) == ["reach-v3"]
    with pytest.raises(ValueError, match=r"task partition 'reach-v3' has materialisations \(evaluation 0\|"):
        remove_dynamic_partition(instance, task="reach-v3")
    with pytest.raises(ValueError, match="no task partition 'nope'"):
        remove_dynamic_partition(instance, task="nope")
    assert remove_dynamic_partition(instance, task="reach-v3", force=True) == "task=reach-v3"
