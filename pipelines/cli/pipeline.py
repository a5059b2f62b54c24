"""`recap run`, `recap experiment`, `recap iterate`, `recap partitions` and `recap ui`: the pipeline driven
from the shell, against the project's persistent Dagster instance."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from pipelines.cli.options import PresetOption, command_group

TasksOption = Annotated[str, typer.Option(help="Comma-separated tasks (default: the preset's).")]
StudyOption = Annotated[
    str, typer.Option(help="The study this run belongs to: its own episodes, checkpoints and ledger rows.")
]


def _instance():
    """The project's persistent instance, after recovering runs whose process was killed (they would
    otherwise hold the training pool's only slot forever)."""
    import dagster as dg

    from pipelines.recovery import recover_dead_runs

    instance = dg.DagsterInstance.get()
    for run_id in recover_dead_runs(instance):
        typer.echo(f"marked run {run_id} failed: its process is gone; freed its pool slots", err=True)
    return instance


ProcessesOption = Annotated[
    int, typer.Option(help="torchrun processes per training stage (0: the preset's, 1 process).")
]
ReaderOption = Annotated[str, typer.Option(help="Training reads: memory | streaming (empty: the preset's).")]
BudgetOption = Annotated[int, typer.Option(help="Streaming reads' memory budget in MiB (0: the preset's).")]


def echo_table(frame) -> None:
    """Every row and column of a result table (polars would hide columns behind an ellipsis)."""
    import polars as pl

    with pl.Config(
        tbl_rows=200,
        tbl_cols=-1,
        tbl_width_chars=400,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
    ):
        typer.echo(frame)


def _resource(
    preset: str,
    tasks: str,
    study: str = "default",
    training_processes: int = 0,
    training_reader: str = "",
    training_memory_mb: int = 0,
    single_task: bool = False,
):
    """The run's resource, after the quick refusals (a preset, study or task name that cannot be) and
    before the orchestrator and torch are imported, so a typo is refused within a second or two.
    ``single_task``: ``tasks`` is one name (``--task``), not a comma-separated list."""
    from recap_core.locations import require_study_name, store_uri
    from recap_core.loop.known_tasks import require_known_tasks, tasks_in_store
    from recap_core.presets import preset_file, preset_names

    # the quick refusals first, before the orchestrator and torch are imported (several seconds)
    preset = preset if preset in preset_names() else str(preset_file(preset))  # a file: absolute path
    names = [tasks] if single_task else [t for t in tasks.split(",") if t]
    require_known_tasks(names, tasks_in_store(store_uri(require_study_name(study))))
    from assets.resources import RecapResource

    recap = RecapResource(
        preset=preset,
        tasks=names,
        lerobot_drop_folder=os.environ.get("RECAP_DROP_FOLDER", ""),
        study=require_study_name(study),
        training_processes=training_processes,
        training_reader=training_reader,
        training_memory_mb=training_memory_mb,
    )
    recap.settings()  # an unknown preset or a bad setting fails here, naming it, before anything runs
    return recap


def run(
    preset: PresetOption = "fast",
    tasks: TasksOption = "",
    iterations: Annotated[int, typer.Option(help="RECAP iterations after iteration 0.")] = 2,
    study: StudyOption = "default",
    training_processes: ProcessesOption = 0,
    training_reader: ReaderOption = "",
    training_memory_mb: BudgetOption = 0,
) -> None:
    """Pre-train and run iterations 0..K on the simulated robot; print success and throughput."""
    from pipelines.instance import ensure_dagster_home

    home = ensure_dagster_home()
    recap = _resource(preset, tasks, study, training_processes, training_reader, training_memory_mb)
    from pipelines.run import run_loop

    echo_table(run_loop(recap, _instance(), iterations))
    typer.echo(
        f"\nRuns, lineage and plots are in the Dagster instance at {home}.\n"
        "Inspect and re-materialise from the UI:  recap ui   (http://127.0.0.1:3000)"
    )


def experiment(
    preset: PresetOption = "study-fast",
    tasks: TasksOption = "",
    iterations: Annotated[int, typer.Option(help="RECAP iterations after iteration 0.")] = 2,
    reports: Annotated[str, typer.Option(help="Reports root (default: $RECAP_HOME/reports).")] = "",
    study: StudyOption = "default",
    seeds: Annotated[
        int,
        typer.Option(
            help="Independent replicates (studies STUDY-r0..), reported with paired 95% intervals "
            "(0: the preset's; study presets: 5)."
        ),
    ] = 0,
    replicate: Annotated[
        int,
        typer.Option(
            help="Run only this replicate (0-based) and report over the replicates the ledger holds "
            "(-1: all of them)."
        ),
    ] = -1,
    report_only: Annotated[
        bool, typer.Option(help="Only rewrite the report from the ledger (no collection or training).")
    ] = False,
    training_processes: ProcessesOption = 0,
    training_reader: ReaderOption = "",
    training_memory_mb: BudgetOption = 0,
) -> None:
    """The evidence study: RECAP iterations 0..K plus SFT/AWR/PPO baselines, then the ledger report."""
    from pathlib import Path

    from pipelines.instance import ensure_dagster_home

    home = ensure_dagster_home()
    recap = _resource(preset, tasks, study, training_processes, training_reader, training_memory_mb)
    from pipelines.experiment import run_experiment

    report = run_experiment(
        recap,
        _instance(),
        iterations,
        Path(reports) if reports else None,
        replicates=seeds,
        report_only=report_only,
        only_replicate=None if replicate < 0 else replicate,
    )
    typer.echo(report.markdown.split("## Every evaluation")[0])
    typer.echo(f"Report: {report.directory / 'report.md'} (ledger version {report.ledger_version})")
    typer.echo(f"Runs, lineage and the report asset are in the Dagster instance at {home} (recap ui).")


def iterate(
    task: Annotated[str, typer.Option(help="Task to run the iteration for.")],
    iteration: Annotated[int, typer.Option(help="Iteration number (added as a partition if new).")],
    preset: PresetOption = "fast",
    study: StudyOption = "default",
    training_processes: ProcessesOption = 0,
    training_reader: ReaderOption = "",
    training_memory_mb: BudgetOption = 0,
) -> None:
    """Materialise one RECAP iteration of one task (the UI's one-click re-materialisation, from the shell)."""

    from pipelines.instance import ensure_dagster_home

    ensure_dagster_home()
    recap = _resource(preset, task, study, training_processes, training_reader, training_memory_mb, True)
    from pipelines.run import materialize_iteration, summary_table

    result = materialize_iteration(recap, _instance(), task, iteration)
    typer.echo(f"run {result.run_id}: {'succeeded' if result.success else 'failed'}")
    echo_table(summary_table(recap.ledger(), [task], "recap", study=study).filter(iteration=iteration))


partitions_app = command_group(help="Task x iteration partitions of the asset graph.")


@partitions_app.command("add")
def add_partition(
    task: Annotated[str, typer.Option(help="A simulated task or one with stored episodes.")],
    iteration: Annotated[int, typer.Option(help="Iteration number (>= 0).")],
    preset: PresetOption = "fast",
    study: StudyOption = "default",
) -> None:
    """Add the partition "iteration|task" (checked first), e.g. before `dagster asset materialize`."""
    from pipelines.instance import ensure_dagster_home

    ensure_dagster_home()
    recap = _resource(preset, task, study, single_task=True)
    from pipelines.run import add_iteration_partition

    key = add_iteration_partition(recap, _instance(), task, iteration)
    typer.echo(f"partition {key} is ready")


@partitions_app.command("list")
def list_partitions(
    preset: PresetOption = "fast",
    study: StudyOption = "default",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Every task partition with its evaluated iterations and the iteration the schedule runs next, or
    why the schedule skips it (a name outside the rule, a typo, a task without demonstrations)."""
    import json

    from pipelines.automation import runnable_tasks
    from pipelines.instance import ensure_dagster_home
    from pipelines.partitions_report import partitions_report

    ensure_dagster_home()
    instance = _instance()
    report = partitions_report(instance, _resource(preset, "", study), runnable_tasks)
    if as_json:
        typer.echo(json.dumps(report))
        return
    typer.echo(f"iterations: {', '.join(report['iterations']) or '-'}")
    for task, row in report["tasks"].items():
        evaluated = ", ".join(str(k) for k in row["evaluated"]) or "-"
        after = f"next {row['next']}" if row["next"] is not None else f"skipped: {row['skipped']}"
        typer.echo(f"{task:32s} evaluated {evaluated:12s} {after}")


@partitions_app.command("remove")
def remove_partition(
    task: Annotated[str | None, typer.Option(help="Remove this task partition (e.g. a typo).")] = None,
    iteration: Annotated[int | None, typer.Option(help="Remove this iteration partition.")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Remove it even though some of its partitions were materialised.")
    ] = False,
) -> None:
    """Remove a task or iteration partition from the asset graph (its materialisations and data stay);
    one with materialisations is refused unless --force."""
    from pipelines.instance import ensure_dagster_home
    from pipelines.partitions_report import remove_dynamic_partition

    if (task is None) == (iteration is None):
        raise typer.BadParameter("give exactly one of --task and --iteration")
    ensure_dagster_home()
    removed = remove_dynamic_partition(_instance(), task=task, iteration=iteration, force=force)
    typer.echo(f"removed partition {removed}")


def ui(port: Annotated[int, typer.Option(help="Port of the web UI.")] = 3000) -> None:
    """Serve the Dagster UI and daemon on the project's instance (DAGSTER_HOME), code location "recap"."""
    from pipelines.instance import ensure_dagster_home
    from pipelines.ui import serve_ui

    home = ensure_dagster_home()
    typer.echo(f"Dagster UI on http://127.0.0.1:{port} (instance {home}); Ctrl-C stops it", err=True)
    raise SystemExit(serve_ui(home, port))
