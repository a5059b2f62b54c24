"""Running the project's Dagster processes the way a server does (the CLI, the daemon, the webserver),
for the deployment tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

PROJECT_ROOT = Path(__file__).resolve().parents[1]  # tests/ -> the project
WORKSPACE = PROJECT_ROOT / "workspace.yaml"
FINISHED = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


def dagster_cli(env: dict, *arguments: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "dagster", *arguments, "-w", str(WORKSPACE)],
        cwd=env["DAGSTER_HOME"], env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def daemon_process(env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dagster._daemon", "run", "-w", str(WORKSPACE)],
        cwd=env["DAGSTER_HOME"], env=env, stdout=log.open("a"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def stop_process(daemon: subprocess.Popen) -> None:
    os.killpg(daemon.pid, signal.SIGTERM)
    try:
        daemon.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(daemon.pid, signal.SIGKILL)


def wait_for_run(instance: dg.DagsterInstance, run_id: str, log: Path, timeout: float = 600) -> dg.DagsterRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = instance.get_run_by_id(run_id)
        if run.status in FINISHED:
            return run
        time.sleep(2)
    raise AssertionError(f"run {run_id} still {run.status} after {timeout} s:\n{log.read_text()[-3000:]}")


def queued_runs(instance: dg.DagsterInstance) -> list[str]:
    return [run.run_id for run in instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED]))]


def webserver_process(env: dict, port: int, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", "-h", "127.0.0.1", "-p", str(port), "-w", str(WORKSPACE)],
        cwd=env["DAGSTER_HOME"], env=env, stdout=log.open("a"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
