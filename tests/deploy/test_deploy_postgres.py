"""The server deployment (deploy/dagster.yaml) against a real PostgreSQL: the daemon launches queued
runs in their own processes, and run history, schedule state and the run queue survive its restart."""

from __future__ import annotations

import os
import shutil

import dagster as dg
import pytest
from dagster_processes import daemon_process, dagster_cli, queued_runs, stop_process, wait_for_run
from paths import PROJECT_ROOT
from services import postgres_server

JOB = "pretraining"


@pytest.fixture
def deployment(tmp_path, monkeypatch):
    """DAGSTER_HOME with the Postgres instance configuration and the tiny preset for the code location."""
    with postgres_server() as database:
        home = tmp_path / "dagster_home"
        home.mkdir()
        shutil.copyfile(PROJECT_ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
        env = {
            **os.environ,
            **database,
            "DAGSTER_HOME": str(home),
            "RECAP_HOME": str(tmp_path / "data"),
            "RECAP_PRESET": "tiny",
            "RECAP_EXECUTOR": "multiprocess",  # a server that isolates each step in a process of its own
            "PYTHONPATH": str(PROJECT_ROOT),
        }
        for name, value in database.items():
            monkeypatch.setenv(name, value)
        yield home, env


def test_history_schedule_and_queue_persist_across_a_daemon_restart(deployment, tmp_path):
    home, env = deployment
    log = tmp_path / "daemon.log"
    dagster_cli(env, "schedule", "start", "nightly_recap")
    dagster_cli(env, "job", "launch", "-j", JOB)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        (first,) = queued_runs(instance)  # no daemon yet: the run waits in the queue, in Postgres

    daemon = daemon_process(env, log)
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            run = wait_for_run(instance, first, log)
            assert run.status == dg.DagsterRunStatus.SUCCESS, log.read_text()[-3000:]
            starts = [
                record.dagster_event.pid
                for record in instance.all_logs(first, of_type=dg.DagsterEventType.STEP_START)
            ]
            assert len(starts) == 4 and len(set(starts)) == 4, "each asset step ran in its own process"
            assert os.getpid() not in starts
    finally:
        stop_process(daemon)

    # While the daemon is down, a new run waits in the queue; a restarted daemon picks it up.
    dagster_cli(env, "job", "launch", "-j", JOB)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (second,) = queued_runs(instance)
    daemon = daemon_process(env, log)
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            assert wait_for_run(instance, second, log).status == dg.DagsterRunStatus.SUCCESS
    finally:
        stop_process(daemon)

    # A fresh connection (as after a restart of every process) sees the history and the schedule on.
    with dg.DagsterInstance.from_config(str(home)) as instance:
        history = {run.run_id: run.status for run in instance.get_runs(dg.RunsFilter(job_name=JOB))}
        assert history == {first: dg.DagsterRunStatus.SUCCESS, second: dg.DagsterRunStatus.SUCCESS}
    listed = dagster_cli(env, "schedule", "list")
    assert "nightly_recap [RUNNING]" in listed, listed
