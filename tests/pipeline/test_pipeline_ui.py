"""`recap ui` serving the asset graph and the main pages over HTTP/GraphQL, and the fresh instance it
creates once before its processes open it (a file of its own, so pytest-xdist runs it beside the shell
tests of test_pipeline_cli.py)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from paths import PROJECT_ROOT
from pipeline_helpers import project_env

from pipelines.instance import PROJECT_DAGSTER_YAML, initialise_storage

TASK = "reach-v3"


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return project_env(tmp_path, RECAP_PRESET="tiny", RECAP_TASKS=TASK, HF_HUB_OFFLINE="1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_recap_ui_serves_the_asset_graph_and_main_pages_and_lists_cli_runs_in_the_jobs_runs(env, tmp_path):
    """`recap ui` on a fresh home; then, while it runs, a failed `recap iterate`: it ends within seconds
    with its root cause on one line (a step failing inside a Dagster run used to hang it: the exception
    chain is cyclic and the pretty-traceback renderer looped on it), and its run carries the code
    location's origin, so the job's Runs tab lists it (CLI runs used to appear on the global Runs page
    only)."""
    port = _free_port()
    log = tmp_path / "ui.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "ui", "--port", str(port)],
        env=env,
        cwd=PROJECT_ROOT,  # where a user starts it, next to the project's dagster.yaml
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    started: set[psutil.Process] = set()  # every process recap ui started, to stop even if we fail
    try:
        # generous: on a busy 2-core machine the webserver and its code server start slowly
        deadline = time.monotonic() + 420
        nodes = None
        while time.monotonic() < deadline:
            started.update(_descendants(process.pid))
            try:
                _fail_on_a_location_error(port, log)
                data = _graphql(port, "{ assetNodes { assetKey { path } groupName } }")
                nodes = data.get("data", {}).get("assetNodes")
                if nodes:
                    break
            except OSError:
                pass
            assert process.poll() is None, f"recap ui exited early:\n{log.read_text()[-3000:]}"
            time.sleep(2)
        assert nodes, f"recap ui did not answer GraphQL within 420 s:\n{log.read_text()[-3000:]}"
        groups = {node["assetKey"]["path"][-1]: node["groupName"] for node in nodes}
        assert groups["value_function_pretrained"] == "pretraining"
        assert groups["policy"] == "recap_iteration"
        assert {"demonstrations", "experience", "advantages", "indicators", "evaluation"} <= set(groups)
        _assert_the_main_pages_load(port)
        _assert_a_failed_iterate_reports_one_line(env)
        job_runs = _graphql(port, JOB_RUNS)["data"]["pipelineOrError"]["runs"]
        every_run = _graphql(port, RUNS)["data"]["runsOrError"]["results"]
        assert [r["pipelineName"] for r in every_run] == ["recap_iteration"] * 2, every_run  # plain, --debug
        assert sorted((r["runId"], r["status"]) for r in job_runs) == sorted(
            (r["runId"], "FAILURE") for r in every_run
        )
        output = log.read_text()
        assert "Warning" not in output and "WARNING" not in output, output[-3000:]
        children = psutil.Process(process.pid).children(recursive=True)
        assert len(children) >= 2, "the webserver and the daemon run under recap ui"
        process.terminate()  # what a service manager sends: it must take the webserver and daemon along
        process.wait(timeout=60)
        _, alive = psutil.wait_procs(children, timeout=60)
        assert not alive, f"left running after recap ui stopped: {[p.cmdline()[:4] for p in alive]}"
    finally:
        if process.poll() is None:
            started.update(_descendants(process.pid))
            os.killpg(process.pid, signal.SIGKILL)
        # the webserver and the daemon run in sessions of their own: the group kill does not reach them
        for child in started:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


OPEN_INSTANCE = "import dagster as dg, sys; dg.DagsterInstance.from_config(sys.argv[1])"


def test_a_fresh_instance_is_created_once_before_the_ui_processes_open_it(tmp_path):
    """The webserver, the daemon and the code server open a fresh SQLite instance at the same moment;
    left to themselves, two of them stamp alembic's version table twice and the code location fails to
    load ("alembic_version has more than one head present"). `recap ui` creates the storage first
    (initialise_storage), so the three processes then open it concurrently without creating anything."""
    for attempt in range(4):
        home = tmp_path / f"home-{attempt}"
        home.mkdir()
        shutil.copyfile(PROJECT_DAGSTER_YAML, home / "dagster.yaml")
        initialise_storage(home)
        command = [sys.executable, "-c", OPEN_INSTANCE, str(home)]
        opening = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True) for _ in range(3)]
        errors = [p.communicate(timeout=120)[1] for p in opening]
        assert all(p.returncode == 0 for p in opening), errors
        databases = sorted(home.rglob("*.db"))
        assert {db.name for db in databases} >= {"runs.db", "index.db", "schedules.db"}
        for db in databases:
            with contextlib.closing(sqlite3.connect(db)) as connection:
                heads = connection.execute("select count(*) from alembic_version").fetchone()[0]
            assert heads == 1, f"{db.name} has {heads} alembic heads"


LOCATION = """{ workspaceOrError { ... on Workspace { locationEntries { name
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
REPOSITORY = """{ repositoriesOrError { ... on RepositoryConnection { nodes {
  jobs { name } schedules { name cronSchedule } sensors { name } } } } }"""
CHECKS = """{ assetNodes { assetKey { path }
  assetChecksOrError { ... on AssetChecks { checks { name description blocking } } } } }"""
PAGES = ["/", "/asset-groups", "/jobs", "/automation", "/runs", "/locations/recap/jobs/recap_iteration"]


def _fail_on_a_location_error(port: int, log: Path) -> None:
    """A code location that failed to load never gets asset nodes: say why at once instead of waiting."""
    entries = _graphql(port, LOCATION).get("data", {}).get("workspaceOrError", {}).get("locationEntries")
    for entry in entries or []:
        error = entry.get("locationOrLoadError") or {}
        assert error.get("__typename") != "PythonError", (
            f"code location {entry['name']} failed to load: {error.get('message')}\n{log.read_text()[-2000:]}"
        )


def _assert_the_main_pages_load(port: int) -> None:
    """What the asset graph, job, checks and automation pages ask for, answered without an error."""
    entries = _graphql(port, LOCATION)["data"]["workspaceOrError"]["locationEntries"]
    assert [(e["name"], e["locationOrLoadError"]["__typename"]) for e in entries] == [
        ("recap", "RepositoryLocation")
    ], entries
    (repository,) = _graphql(port, REPOSITORY)["data"]["repositoriesOrError"]["nodes"]
    jobs = {job["name"] for job in repository["jobs"]}
    assert {"pretraining", "recap_iteration", "recap_iteration_with_baselines", "study_report"} <= jobs
    schedules = [(s["name"], s["cronSchedule"]) for s in repository["schedules"]]
    assert schedules == [("nightly_recap", "0 2 * * *")]
    assert [sensor["name"] for sensor in repository["sensors"]] == ["new_fleet_data"]
    checks = [
        check
        for node in _graphql(port, CHECKS)["data"]["assetNodes"]
        for check in (node["assetChecksOrError"].get("checks") or [])
    ]
    assert len(checks) >= 8 and all(check["description"] for check in checks), checks
    assert {c["name"] for c in checks if c["blocking"]} >= {"corrections_labelled_positive"}
    for page in PAGES:  # the single-page app's routes are served (their data is the queries above)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{page}", timeout=10) as response:
            assert response.status == 200 and b"<html" in response.read().lower(), page


def _assert_a_failed_iterate_reports_one_line(env: dict[str, str]) -> None:
    command = [sys.executable, "-m", "pipelines.cli", "iterate", "--task", TASK, "--iteration", "0"]
    started = time.monotonic()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert time.monotonic() - started < 120
    last = result.stderr.strip().splitlines()[-2:]
    # nothing was pre-trained, so the iteration's first step finds no demonstrations to learn from.
    assert last[0].startswith(
        "error: FileNotFoundError: iteration 0 of 'reach-v3' learns from the task's demonstrations"
    ), last
    assert last[1] == "(add --debug for the full traceback)"
    assert "Traceback" not in result.stderr
    debug = subprocess.run([*command, "--debug"], env=env, capture_output=True, text=True, timeout=120)
    assert debug.returncode == 2 and "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1].startswith("error: FileNotFoundError: iteration 0")


JOB_RUNS = """{ pipelineOrError(params: {pipelineName: "recap_iteration", repositoryName: "__repository__",
  repositoryLocationName: "recap"}) { ... on Pipeline { runs { runId status } } } }"""
RUNS = """{ runsOrError { ... on Runs { results { runId pipelineName } } } }"""
