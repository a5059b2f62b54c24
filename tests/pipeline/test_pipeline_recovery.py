"""A run killed with kill -9 inside a training step must not block later runs.

The child process materialises V_pre with a huge epoch count, so it is certainly inside the `training`
pool's only slot when it is killed; the next `recap run` must then recover it and complete.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import dagster as dg
import pytest
from pipeline_helpers import project_env

from pipelines.recovery import recover_dead_runs

TASK = "reach-v3"

CHILD = textwrap.dedent(
    """
    import os, sys
    import dagster as dg
    import yaml
    from pipelines.definitions import ALL_ASSETS
    from pipelines.recovery import owner_tags
    from assets.resources import RecapResource
    from recap_core.loop.settings import preset_file

    endless = yaml.safe_load(preset_file("tiny").read_text())
    endless["value_pretrain"].update(epochs=10**6, patience=10**6)
    os.makedirs(os.environ["RECAP_HOME"], exist_ok=True)
    path = os.path.join(os.environ["RECAP_HOME"], "endless.yaml")
    with open(path, "w") as file:
        yaml.safe_dump(endless, file)
    recap = RecapResource(preset=path, tasks=[sys.argv[1]])
    dg.materialize(
        ALL_ASSETS,
        selection=dg.AssetSelection.assets("demonstrations", "value_function_pretrained"),
        instance=dg.DagsterInstance.get(),
        resources={"recap": recap},
        tags=owner_tags(),
    )
    """
)


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return project_env(tmp_path)


def _training_slot_holders(instance: dg.DagsterInstance) -> set[str]:
    info = instance.event_log_storage.get_concurrency_info("training")
    return {slot.run_id for slot in info.claimed_slots}


def test_a_run_killed_inside_a_training_step_does_not_block_the_next(env, monkeypatch):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, TASK], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
    try:
        with dg.DagsterInstance.get() as instance:
            deadline = time.monotonic() + 240
            while not _training_slot_holders(instance):
                assert child.poll() is None, child.stderr.read().decode()[-3000:]
                assert time.monotonic() < deadline, "the child never reached the training step"
                time.sleep(0.2)
            (killed_run,) = _training_slot_holders(instance)
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
            assert instance.get_run_by_id(killed_run).status == dg.DagsterRunStatus.STARTED

            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pipelines.cli",
                    "run",
                    "--preset",
                    "tiny",
                    "--tasks",
                    TASK,
                    "--iterations",
                    "0",
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert result.returncode == 0, result.stderr[-3000:]
            assert f"marked run {killed_run} failed" in result.stderr
            assert instance.get_run_by_id(killed_run).status == dg.DagsterRunStatus.FAILURE
            assert not _training_slot_holders(instance)
            assert recover_dead_runs(instance) == [], "nothing left to recover"
    finally:
        if child.poll() is None:
            child.kill()
