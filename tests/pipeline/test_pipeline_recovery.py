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
from pathlib import Path

import dagster as dg
import pytest
from pipeline_helpers import project_env, unresolved_references

from assets.resources import RecapResource
from pipelines.instance import initialise_storage
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
    from recap_core.presets import preset_file

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


# Iteration 1 of the task with a V^1 that never finishes: the iteration is killed inside V^1's training.
CHILD_ITERATION = textwrap.dedent(
    """
    import os, sys
    import dagster as dg
    import yaml
    from assets.resources import RecapResource
    from pipelines.run import materialize_iteration
    from recap_core.presets import preset_file

    endless = yaml.safe_load(preset_file("tiny").read_text())
    endless["value_finetune"].update(epochs=10**6)
    path = os.path.join(os.environ["RECAP_HOME"], "endless-v1.yaml")
    with open(path, "w") as file:
        yaml.safe_dump(endless, file)
    recap = RecapResource(preset=path, tasks=[sys.argv[1]])
    materialize_iteration(recap, dg.DagsterInstance.get(), sys.argv[1], 1)
    """
)


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return project_env(tmp_path)


def _training_slot_holders(instance: dg.DagsterInstance) -> set[str]:
    info = instance.event_log_storage.get_concurrency_info("training")
    return {slot.run_id for slot in info.claimed_slots}


def _start(script: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script, TASK], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _kill_inside_training(instance: dg.DagsterInstance, child: subprocess.Popen) -> str:
    """kill -9 ``child`` once it holds the training pool's slot; the id of the run it leaves behind."""
    deadline = time.monotonic() + 240
    while not _training_slot_holders(instance):
        assert child.poll() is None, child.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "the child never reached the training step"
        time.sleep(0.2)
    (killed_run,) = _training_slot_holders(instance)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    return killed_run


def test_a_run_killed_inside_a_training_step_does_not_block_the_next(env, monkeypatch):
    # as every recap command does first: the child and this test open the fresh home at the same moment
    initialise_storage(Path(env["DAGSTER_HOME"]))
    child = _start(CHILD, env)
    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
    try:
        with dg.DagsterInstance.get() as instance:
            killed_run = _kill_inside_training(instance, child)
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

            # Killed again, inside iteration 1's V^1 (its rollouts, collected by pi^0, are stored), then
            # the whole loop re-run: retraining reproduces V_pre, pi_pre and pi^0 bit for bit, so the
            # rollouts' collected_by still names a stored checkpoint (it used to name a deleted one).
            monkeypatch.setenv("RECAP_HOME", env["RECAP_HOME"])
            recap = RecapResource(preset="tiny", tasks=[TASK])
            pi_0 = recap.checkpoint_layout().iteration("policy", TASK, 0)
            before = recap.checkpoint_layout().versions(pi_0)
            child = _start(CHILD_ITERATION, env)
            _kill_inside_training(instance, child)
            rerun = subprocess.run(
                [sys.executable, "-m", "pipelines.cli", "run", "--preset", "tiny", "--tasks", TASK,
                 "--iterations", "1"],
                env=env, capture_output=True, text=True, timeout=600,
            )  # fmt: skip
            assert rerun.returncode == 0, rerun.stderr[-3000:]
            assert recap.store().episodes(task=TASK, iteration=1).frame.height > 0
            assert recap.checkpoint_layout().versions(pi_0) == before, "pi^0 retrained into itself"
            assert not unresolved_references(recap)
    finally:
        if child.poll() is None:
            child.kill()
