"""The pipeline from the shell: `dg launch` of one task/iteration partition against the project's
dagster.yaml, and typos refused before anything is registered (`recap ui`: test_pipeline_ui.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from paths import PROJECT_ROOT
from pipeline_helpers import project_env

TASK = "reach-v3"


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return project_env(tmp_path, RECAP_PRESET="tiny", RECAP_TASKS=TASK, HF_HUB_OFFLINE="1")


def _dg(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """Dagster's CLI exactly as the README prints it: `dg ...` from the repository's root."""
    dg_cli = Path(sys.executable).parent / "dg"
    return subprocess.run(
        [str(dg_cli), *args], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600
    )


def test_materialize_one_task_iteration_partition_from_the_shell(env):
    pre = _dg(env, "launch", "--job", "pretraining")
    assert pre.returncode == 0, pre.stderr[-3000:]
    # exactly as the README prints it: add the partition, then Dagster's own CLI materialises it
    added = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "partitions", "add", "--task", TASK, "--iteration", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert added.returncode == 0 and f"partition 0|{TASK} is ready" in added.stdout, added.stderr
    run = _dg(env, "launch", "--job", "recap_iteration", "--partition", f"0|{TASK}")
    assert run.returncode == 0, run.stderr[-3000:]
    for output in (pre.stderr, run.stderr):  # nothing a user cannot act on
        assert "Warning" not in output and "WARNING" not in output, output[-3000:]
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        evaluated = instance.get_materialized_partitions(dg.AssetKey("evaluation"))
        assert evaluated == {f"0|{TASK}"}
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        assert {run.job_name for run in instance.get_runs()} == {"pretraining", "recap_iteration"}
    ledger = Path(env["RECAP_HOME"]) / "ledger" / "metrics"
    assert (ledger / "_delta_log").is_dir()


def _recap_in_process(env: dict[str, str], monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """`recap ARGS` through the entry point `recap` runs (main(), which maps refusals to exit 2 and one
    line), in this process: the same code path as the installed command without a new interpreter."""
    from pipelines.cli.main import main

    for name in ("DAGSTER_HOME", "RECAP_HOME", "RECAP_PRESET", "RECAP_TASKS", "HF_HUB_OFFLINE"):
        monkeypatch.setenv(name, env[name])
    monkeypatch.setattr(sys, "argv", ["recap", *args])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main()
    return int(exit_.value.code or 0), capsys.readouterr().err


def test_typos_are_refused_before_anything_is_registered(env, monkeypatch, capsys):
    """`recap iterate --task psh-v3` used to add a permanent `psh-v3` partition that the nightly schedule
    then requested every night. Names and the iteration's order are now checked first; nothing is
    registered. The first refusal runs the installed command; the others its entry point in-process."""
    base = [sys.executable, "-m", "pipelines.cli"]
    typo = subprocess.run(
        [*base, "iterate", "--task", "psh-v3", "--iteration", "1", "--preset", "tiny"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert typo.returncode == 2  # every refused input exits 2, as click's own usage errors do
    error = typo.stderr.strip().splitlines()[-2]
    # one short line with the nearest names (it used to list every task: a 1,069-character line)
    assert error.startswith("error: ValueError: unknown task 'psh-v3'; did you mean push-v3, "), error
    assert len(error) < 200, error
    preset_code, preset = _recap_in_process(env, monkeypatch, capsys, "run", "--preset", "tiyn")
    assert preset_code == 2
    assert "unknown preset 'tiyn'; presets: tiny, fast" in preset
    reader_code, reader = _recap_in_process(
        env, monkeypatch, capsys, "run", "--preset", "tiny", "--training-reader", "stremaing"
    )
    assert reader_code == 2
    assert "training_reader must be one of ('memory', 'streaming'), got 'stremaing'" in reader
    ahead_code, ahead = _recap_in_process(
        env,
        monkeypatch,
        capsys,
        "partitions",
        "add",
        "--task",
        "push-v3",
        "--iteration",
        "3",
        "--preset",
        "tiny",
    )
    assert ahead_code == 2
    assert "iteration 3 of 'push-v3' is out of order" in ahead
    assert "the next iteration of 'push-v3' is 0" in ahead
    assert "Traceback" not in typo.stderr + preset + reader + ahead
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        assert instance.get_dynamic_partitions("task") == []
        assert instance.get_dynamic_partitions("iteration") == []
