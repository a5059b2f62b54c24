"""The server deployment (deploy/dagster.yaml) against a real PostgreSQL: the daemon launches queued
runs in their own processes, and run history, schedule state and the run queue survive its restart."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from services import postgres_server

PROJECT_ROOT = Path(__file__).resolve().parents[1]
WORKSPACE = PROJECT_ROOT / "workspace.yaml"
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
            "PYTHONPATH": str(PROJECT_ROOT),
        }
        for name, value in database.items():
            monkeypatch.setenv(name, value)
        yield home, env


def _dagster(env: dict, *arguments: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "dagster", *arguments, "-w", str(WORKSPACE)],
        cwd=env["DAGSTER_HOME"], env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def _daemon(env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dagster._daemon", "run", "-w", str(WORKSPACE)],
        cwd=env["DAGSTER_HOME"], env=env, stdout=log.open("a"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def _stop(daemon: subprocess.Popen) -> None:
    os.killpg(daemon.pid, signal.SIGTERM)
    try:
        daemon.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(daemon.pid, signal.SIGKILL)


def _wait_for(instance: dg.DagsterInstance, run_id: str, log: Path, timeout: float = 600) -> dg.DagsterRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = instance.get_run_by_id(run_id)
        if run.status in (
            dg.DagsterRunStatus.SUCCESS,
            dg.DagsterRunStatus.FAILURE,
            dg.DagsterRunStatus.CANCELED,
        ):
            return run
        time.sleep(2)
    raise AssertionError(f"run {run_id} still {run.status} after {timeout} s:\n{log.read_text()[-3000:]}")


def _queued(instance: dg.DagsterInstance) -> list[str]:
    return [run.run_id for run in instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED]))]


def test_history_schedule_and_queue_persist_across_a_daemon_restart(deployment, tmp_path):
    home, env = deployment
    log = tmp_path / "daemon.log"
    _dagster(env, "schedule", "start", "nightly_recap")
    _dagster(env, "job", "launch", "-j", JOB)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        (first,) = _queued(instance)  # no daemon yet: the run waits in the queue, in Postgres

    daemon = _daemon(env, log)
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            run = _wait_for(instance, first, log)
            assert run.status == dg.DagsterRunStatus.SUCCESS, log.read_text()[-3000:]
            starts = [
                record.dagster_event.pid
                for record in instance.all_logs(first, of_type=dg.DagsterEventType.STEP_START)
            ]
            assert len(starts) == 4 and len(set(starts)) == 4, "each asset step ran in its own process"
            assert os.getpid() not in starts
    finally:
        _stop(daemon)

    # While the daemon is down, a new run waits in the queue; a restarted daemon picks it up.
    _dagster(env, "job", "launch", "-j", JOB)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (second,) = _queued(instance)
    daemon = _daemon(env, log)
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            assert _wait_for(instance, second, log).status == dg.DagsterRunStatus.SUCCESS
    finally:
        _stop(daemon)

    # A fresh connection (as after a restart of every process) sees the history and the schedule on.
    with dg.DagsterInstance.from_config(str(home)) as instance:
        history = {run.run_id: run.status for run in instance.get_runs(dg.RunsFilter(job_name=JOB))}
        assert history == {first: dg.DagsterRunStatus.SUCCESS, second: dg.DagsterRunStatus.SUCCESS}
    listed = _dagster(env, "schedule", "list")
    assert "nightly_recap [RUNNING]" in listed, listed
