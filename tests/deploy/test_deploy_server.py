"""A single-server deployment as it runs in production: PostgreSQL holds the Dagster instance
(deploy/dagster.yaml), the episode store and the metrics ledger live on S3, and the daemon and the
webserver are separate processes. The nightly schedule's tick queues one run per task, the daemon
launches them, every asset step runs in its own process, the results land in the ledger on S3, and
the `training` pool (limit 1) keeps training steps of the two concurrent runs from overlapping."""

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
            # a server that isolates steps: each in its own process (the default runs them in the run's)
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


def test_the_nightly_tick_runs_an_iteration_per_task_on_postgres_and_s3(server, tmp_path):
    home, env = server
    began = time.monotonic()
    log, web_log = tmp_path / "daemon.log", tmp_path / "webserver.log"
    port = free_port()
    daemon, webserver = daemon_process(env, log), webserver_process(env, port, web_log)
    try:
        dagster_cli(env, "job", "launch", "-j", "pretraining")
        with dg.DagsterInstance.from_config(str(home)) as instance:
            (pretraining,) = instance.get_runs(dg.RunsFilter(job_name="pretraining"))
            run = wait_for_run(instance, pretraining.run_id, log)
            assert run.status == dg.DagsterRunStatus.SUCCESS, log.read_text()[-3000:]

            dagster_cli(env, "schedule", "start", "nightly_recap")
            deadline = time.monotonic() + 180
            while len(_nightly_runs(instance)) < len(TASKS):
                assert time.monotonic() < deadline, f"no nightly tick:\n{log.read_text()[-3000:]}"
                time.sleep(3)
            dagster_cli(env, "schedule", "stop", "nightly_recap")  # one night is enough
            nightly = _nightly_runs(instance)
            finished = [wait_for_run(instance, r.run_id, log, timeout=900) for r in nightly]
            for run in finished:
                assert run.status == dg.DagsterRunStatus.SUCCESS, log.read_text()[-3000:]
            assert sorted(r.tags["dagster/partition"] for r in finished) == sorted(f"0|{t}" for t in TASKS)

            intervals = {r.run_id: _step_intervals(instance, r.run_id) for r in finished}
            pids = {
                (r.run_id, record.dagster_event.step_key): record.dagster_event.pid
                for r in finished
                for record in instance.all_logs(r.run_id, of_type=dg.DagsterEventType.STEP_START)
            }
        _wait_for_webserver(port, web_log)
        listed = _graphql(port, "{ runsOrError { ... on Runs { results { runId status } } } }")
    finally:
        stop_process(daemon)
        stop_process(webserver)
    elapsed = time.monotonic() - began

    # every asset step in its own process, none in the test's
    assert len(set(pids.values())) == len(pids) and os.getpid() not in pids.values()
    # the training pool held across the two concurrent runs: no two training steps overlapped
    training = sorted(
        interval for steps in intervals.values() for step, interval in steps.items() if step in TRAINING_STEPS
    )
    assert len(training) == len(TRAINING_STEPS) * len(TASKS)
    for (_, end), (start, _) in itertools.pairwise(training):
        assert start >= end, f"training steps overlapped: {training}"
    # the runs overlapped in time (otherwise the pool was not tested)
    spans = [
        (min(s for s, _ in steps.values()), max(e for _, e in steps.values())) for steps in intervals.values()
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
    assert (
        all(statuses[r.run_id] == "SUCCESS" for r in finished) and statuses[pretraining.run_id] == "SUCCESS"
    )
    print(f"deployment test: {elapsed:.0f} s wall-clock")
