"""`recap bench launch`: one iteration of one task run the UI's way and the CLI's way, timed, as JSON.

The UI's way: the run is created from the code location (a gRPC code server, as the webserver keeps one)
and launched by the instance's run launcher into a run worker process, whose executor runs the steps
(``RECAP_EXECUTOR``: each step in a process of its own, or all in the run worker). The benchmark's
instance launches at once (no queue, no daemon), so what is timed is the launched run itself. The CLI's
way: `recap iterate` in a fresh process, which runs the steps in its own process. The partition is
pre-trained and materialised once first, so every measurement re-materialises the same iteration.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import yaml

from pipelines.instance import PROJECT_DAGSTER_YAML
from pipelines.ui import WORKSPACE
from recap_core.sim.console import simulator_output_to_stderr

FINISHED = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


def _cli(env: dict[str, str], *arguments: str) -> float:
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *arguments], env=env, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise RuntimeError(f"recap {' '.join(arguments)} failed:\n{out.stderr[-3000:]}")
    return time.monotonic() - started


def _launched_run(env: dict[str, str], task: str, iteration: int, timeout: float) -> float:
    """Launch the iteration job's partition through the code location and wait for the run to end."""
    from dagster._cli.job import _create_run
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    previous = dict(os.environ)
    os.environ.update(env)  # the code server and the run worker it starts inherit them
    try:
        with (
            simulator_output_to_stderr(),  # the code server's and run worker's logs: stdout stays JSON
            dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance,
            WorkspaceProcessContext(instance, WorkspaceFileTarget([str(WORKSPACE)])) as workspace,
        ):
            request = workspace.create_request_context()
            location = request.get_code_location("recap")
            repository = location.get_repository("__repository__")
            job = repository.get_full_job("recap_iteration")
            tags = {
                "dagster/partition": f"{iteration}|{task}",
                "dagster/partition/iteration": str(iteration),
                "dagster/partition/task": task,
            }
            run = _create_run(
                instance=instance, code_location=location, remote_repo=repository, remote_job=job,
                run_config={}, tags=tags, op_selection=None, run_id=None,
            )  # fmt: skip
            started = time.monotonic()
            instance.submit_run(run.run_id, request)
            while (status := instance.get_run_by_id(run.run_id).status) not in FINISHED:
                if time.monotonic() - started > timeout:
                    raise TimeoutError(f"run {run.run_id} still {status} after {timeout:.0f} s")
                time.sleep(0.5)
            if status != dg.DagsterRunStatus.SUCCESS:
                raise RuntimeError(f"run {run.run_id} ended {status}")
            return time.monotonic() - started
    finally:
        os.environ.clear()
        os.environ.update(previous)


def run_launch_benchmark(
    preset: str = "tiny",
    task: str = "reach-v3",
    executors: tuple[str, ...] = ("multiprocess", "in_process"),
    repeats: int = 1,
    timeout: float = 3600.0,
) -> dict:
    """Seconds for iteration 0 of ``task``: the CLI's run and a launched run per executor."""
    root = Path(tempfile.mkdtemp(prefix="recap-launch-bench-"))
    try:
        home = root / "dagster_home"
        home.mkdir()
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "RECAP_HOME": str(root / "data"),
            "RECAP_PRESET": preset,
            "RECAP_TASKS": task,
        }
        warm_up = _cli(env, "run", "--preset", preset, "--tasks", task, "--iterations", "0")
        result: dict = {
            "preset": preset,
            "task": task,
            "iteration": 0,
            "pretraining_and_first_run_s": warm_up,
        }
        result["cli_in_process_s"] = [
            round(_cli(env, "iterate", "--task", task, "--iteration", "0", "--preset", preset), 1)
            for _ in range(repeats)
        ]
        # launch at once: nothing here runs the queue's daemon (the CLI runs above reinstall the project's
        # dagster.yaml, so the instance is switched to direct launches only now)
        config = yaml.safe_load(PROJECT_DAGSTER_YAML.read_text())
        config["run_coordinator"] = {
            "module": "dagster.core.run_coordinator",
            "class": "DefaultRunCoordinator",
        }
        (home / "dagster.yaml").write_text(yaml.safe_dump(config))
        result["launched_s"] = {
            executor: [
                round(_launched_run({**env, "RECAP_EXECUTOR": executor}, task, 0, timeout), 1)
                for _ in range(repeats)
            ]
            for executor in executors
        }
        cli = min(result["cli_in_process_s"])
        result["launched_over_cli"] = {
            executor: round(min(times) / cli, 2) for executor, times in result["launched_s"].items()
        }
        return result
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    print(json.dumps(run_launch_benchmark()))
