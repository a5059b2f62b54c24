"""A single-server deployment as it runs in production: PostgreSQL holds the Dagster instance
(deploy/dagster.yaml), the episode store and the metrics ledger live on S3, and the daemon and the
webserver are separate processes. One PostgreSQL, one S3 server and one pretraining run serve the whole
story, as a server lives it: a run queued with no daemon waits in PostgreSQL and the daemon launches it,
each asset step in its own process; the daemon is stopped and the nightly schedule turned on while it is
down; the restarted daemon ticks it, one run per task, the results land in the ledger on S3, and the
`training` pool (limit 1) keeps training steps of the two concurrent runs from overlapping; a fresh
connection and the webserver see the whole history."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import time
import urllib.request

import dagster as dg
import polars as pl
import pytest
from dagster_processes import (
    PROJECT_ROOT,
    daemon_process,
    dagster_cli,
    queued_runs,
    stop_process,
    wait_for_run,
    webserver_process,
)
from services import free_port, postgres_server, s3_server

from recap_core.ledger import read_ledger
from recap_core.store import EpisodeStore

TASKS = ("reach-v3", "push-v3")
TRAINING_STEPS = {"value_function", "policy"}  # the iteration's assets in the `training` pool
STORE, LEDGER = "s3://recap/store", "s3://recap/ledger/metrics"


@pytest.fixture
def server(tmp_path, monkeypatch):
    with postgres_server() as database, s3_server() as object_storage:
        home = tmp_path / "dagster_home"
        home.mkdir()
        shutil.copyfile(PROJECT_ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
        env = {
            **os.environ, **database, **object_storage,
            "DAGSTER_HOME": str(home),
            "RECAP_HOME": str(tmp_path / "data"),  # checkpoints: a file system (docs/deploy.md)
            "RECAP_STORE_URI": STORE,
            "RECAP_LEDGER_URI": LEDGER,
            "RECAP_PRESET": "tiny",
            "RECAP_TASKS": ",".join(TASKS),
            "RECAP_NIGHTLY_CRON": "* * * * *",  # tonight's tick, within a minute
            # first a server that isolates steps, each in its own process; after the restart the default
            "RECAP_EXECUTOR": "multiprocess",
            "PYTHONPATH": str(PROJECT_ROOT),
        }  # fmt: skip
        for name, value in {**database, **object_storage}.items():
            monkeypatch.setenv(name, value)
        yield home, env


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _wait_for_webserver(port: int, log, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5)
            return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"the webserver did not answer:\n{log.read_text()[-3000:]}")


def _nightly_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return list(instance.get_runs(dg.RunsFilter(tags={"dagster/schedule_name": "nightly_recap"})))


def _all_nightly_runs_finished(instance: dg.DagsterInstance, log) -> list[dg.DagsterRun]:
    """Every run the schedule launched, each once it has ended; a tick that was already under way when
    the schedule was stopped may still add one, so the list is read again until nothing new appears."""
    done: dict[str, dg.DagsterRun] = {}
    while pending := [r for r in _nightly_runs(instance) if r.run_id not in done]:
        for run in pending:
            done[run.run_id] = wait_for_run(instance, run.run_id, log, timeout=900)
    return list(done.values())


def _step_intervals(instance: dg.DagsterInstance, run_id: str) -> dict[str, tuple[float, float]]:
    """(start, end) wall-clock times of each step of a run, from its event log."""
    starts, ends = {}, {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            starts[event.step_key] = record.timestamp
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            ends[event.step_key] = record.timestamp
    return {step: (starts[step], ends[step]) for step in starts if step in ends}


def test_a_server_queues_restarts_and_runs_the_nightly_tick_per_task_on_postgres_and_s3(server, tmp_path):
    home, env = server
    began = time.monotonic()
    log, web_log = tmp_path / "daemon.log", tmp_path / "webserver.log"
    dagster_cli(env, "job", "launch", "-j", "pretraining")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        (pretraining,) = queued_runs(instance)  # no daemon yet: the run waits in the queue, in PostgreSQL

    daemon = daemon_process(env, log)
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            run = wait_for_run(instance, pretraining, log)
            assert run.status == dg.DagsterRunStatus.SUCCESS, log.read_text()[-3000:]
    finally:
        stop_process(daemon)

    # While the daemon is down the schedule is turned on; the restarted daemon acts on it, with the default
    # executor now: each run's steps in its run worker, one process per run.
    dagster_cli(env, "schedule", "start", "nightly_recap")
    env = {**env, "RECAP_EXECUTOR": "in_process"}
    port = free_port()
    daemon, webserver = daemon_process(env, log), webserver_process(env, port, web_log)
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            deadline = time.monotonic() + 180
            while len(_nightly_runs(instance)) < len(TASKS):
                assert time.monotonic() < deadline, f"no nightly tick:\n{log.read_text()[-3000:]}"
                time.sleep(3)
            listed_schedules = dagster_cli(env, "schedule", "list")
            dagster_cli(env, "schedule", "stop", "nightly_recap")  # one night is enough
            finished = _all_nightly_runs_finished(instance, log)
            for run in finished:
                assert run.status == dg.DagsterRunStatus.SUCCESS, log.read_text()[-3000:]
            # the first tick: iteration 0 of every task; a task whose iteration 0 was evaluated before a
            # later tick (a fast run, a slow `schedule stop`) gets its iteration 1 there, never 0 again
            partitions = [r.tags["dagster/partition"] for r in finished]
            assert sorted(p for p in partitions if p.startswith("0|")) == sorted(f"0|{t}" for t in TASKS)
            assert all(p.startswith(("0|", "1|")) for p in partitions) and len(set(partitions)) == len(
                partitions
            )
            first_tick = [r for r in finished if r.tags["dagster/partition"].startswith("0|")]

            intervals = {r.run_id: _step_intervals(instance, r.run_id) for r in finished}
            pids = {
                (r.run_id, record.dagster_event.step_key): record.dagster_event.pid
                for r in [*finished, instance.get_run_by_id(pretraining)]
                for record in instance.all_logs(r.run_id, of_type=dg.DagsterEventType.STEP_START)
            }
        _wait_for_webserver(port, web_log)
        listed = _graphql(port, "{ runsOrError { ... on Runs { results { runId status } } } }")
    finally:
        stop_process(daemon)
        stop_process(webserver)
    elapsed = time.monotonic() - began
    assert "nightly_recap [RUNNING]" in listed_schedules, listed_schedules

    # a fresh connection (as after a restart of every process) sees the whole history
    with dg.DagsterInstance.from_config(str(home)) as instance:
        history = {run.run_id: run.status for run in instance.get_runs()}
    assert history == {
        run_id: dg.DagsterRunStatus.SUCCESS for run_id in [pretraining, *(r.run_id for r in finished)]
    }

    # multiprocess: each of pretraining's four asset steps in its own process; in_process: each nightly run's
    # steps in one process of its own; none in the test's
    processes = {run_id: [pid for (run, _), pid in pids.items() if run == run_id] for run_id in history}
    assert len(processes[pretraining]) == 4 and len(set(processes[pretraining])) == 4
    nightly_processes = [set(processes[r.run_id]) for r in finished]
    assert all(len(p) == 1 for p in nightly_processes) and len(set.union(*nightly_processes)) == len(finished)
    assert all(len(processes[r.run_id]) == 7 for r in finished)  # the iteration's seven asset steps
    assert os.getpid() not in pids.values() and not set.union(*nightly_processes) & set(
        processes[pretraining]
    )
    # the training pool held across the two concurrent runs: no two training steps overlapped
    training = sorted(
        interval for steps in intervals.values() for step, interval in steps.items() if step in TRAINING_STEPS
    )
    assert len(training) == len(TRAINING_STEPS) * len(finished)
    for (_, end), (start, _) in itertools.pairwise(training):
        assert start >= end, f"training steps overlapped: {training}"
    # the first tick's runs overlapped in time (otherwise the pool was not tested)
    spans = [
        (min(s for s, _ in steps.values()), max(e for _, e in steps.values()))
        for steps in (intervals[r.run_id] for r in first_tick)
    ]
    assert max(s for s, _ in spans) < min(e for _, e in spans), (
        "the two nightly runs did not run concurrently"
    )

    # the results, on S3: the ledger row of each task's pi^0, the demonstrations and the iteration's labels
    ledger = read_ledger(LEDGER)
    recap_rows = ledger.filter((ledger["method"] == "recap") & (ledger["iteration"] == 0))
    assert sorted(recap_rows["task"].to_list()) == sorted(TASKS)
    store = EpisodeStore(STORE)
    assert set(store.episodes(kind="demo").frame["task"].to_list()) == set(TASKS)
    indicators = store.read_derived("indicators").filter(pl.col("iteration") == 0)
    assert set(indicators["task"].to_list()) == set(TASKS)
    # the webserver reads the same history from PostgreSQL
    statuses = {r["runId"]: r["status"] for r in listed["data"]["runsOrError"]["results"]}
    assert set(statuses) == set(history)
    assert all(statuses[r.run_id] == "SUCCESS" for r in finished) and statuses[pretraining] == "SUCCESS"

    print(f"deployment test: {elapsed:.0f} s wall-clock")
