"""`recap ingest`, `recap export`, `recap episodes` and `recap query`: the episode store from the shell."""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from pipelines.cli.options import USER_ERROR_EXIT, StoreOption, StudyOption, command_group


def _store(uri: str | None):
    from recap_core.store import EpisodeStore

    return EpisodeStore(uri)


def _existing_store(uri: str | None, study: str = "default"):
    """The store a read-only command reads; a --store path or a --study that does not exist is a typo,
    not an empty store (answering with an empty table, and creating the folder, would hide it)."""
    from pathlib import Path

    from recap_core.locations import DEFAULT_STUDY, store_uri

    target = store_uri(study, uri)  # --store is the root, --study its namespace: the pipeline's rule
    if "://" not in target and not Path(target).is_dir():
        if study != DEFAULT_STUDY:
            typer.echo(f"error: study {study!r} has no episode store (at {target})", err=True)
            raise typer.Exit(code=USER_ERROR_EXIT)
        if uri is not None:
            typer.echo(f"error: no episode store at {target} (--store)", err=True)
            raise typer.Exit(code=USER_ERROR_EXIT)
        Path(target).mkdir(parents=True, exist_ok=True)  # the default home: empty until data arrives
    return _store(target)


def _dataset_problems(error, batch: list) -> str:
    """The store's refusal in the dataset's own terms: its episode index (from each episode's
    ``source``, "lerobot:<dataset>#<index>") before the stored id, which a user has never seen."""
    index = {episode.episode_id: episode.source.rsplit("#", 1)[-1] for episode in batch}
    parts = [
        f"dataset episode {index.get(p.episode_id, '?')} (stored id {p.episode_id}): column {p.column!r} "
        f"= {p.value!r}: {p.rule}"
        for p in error.problems[:5]
    ]
    more = f"; ... and {len(error.problems) - 5} more" if len(error.problems) > 5 else ""
    head = f"{len(error.problems)} problem(s) in this batch, which was not written: "
    return head + "; ".join(parts) + more


def _as_text(frame: pl.DataFrame, output: str) -> pl.DataFrame:
    """Columns that CSV or JSON cannot hold as they are, as text: encoded image frames (binary) as
    base64, and in CSV vectors as "[x, y, ...]". Polars refuses both (and panics on binary in JSON)."""
    columns = []
    for name, dtype in frame.schema.items():
        column = pl.col(name)
        if dtype == pl.Binary:
            column = column.bin.encode("base64")
        elif output == "csv" and isinstance(dtype, pl.Array | pl.List):
            as_list = column.arr.to_list() if isinstance(dtype, pl.Array) else column
            text = as_list.cast(pl.List(pl.String)).list.eval(pl.element().fill_null("null"))
            column = pl.concat_str(pl.lit("["), text.list.join(", "), pl.lit("]"))
        columns.append(column.alias(name))
    return frame.select(columns)


def _print_frame(frame: pl.DataFrame, output: str) -> None:
    if output == "csv":
        typer.echo(_as_text(frame, output).write_csv(), nl=False)
    elif output == "json":
        typer.echo(_as_text(frame, output).write_json())
    else:
        with pl.Config(tbl_rows=200, tbl_cols=30, fmt_str_lengths=60, tbl_width_chars=200):
            typer.echo(frame)


def _simulated_fps(task: str) -> float:
    """The control rate of a simulated task; other tasks must say theirs."""
    from recap_core.sim.tasks import get_task, task_names

    if task not in task_names():
        raise typer.BadParameter(f"task {task!r} is not simulated: pass its recording rate with --fps")
    return 1.0 / get_task(task).make_env().control_period


ingest_app = command_group(help="Ingest episodes into the store.")


@ingest_app.command("lerobot")
def ingest_lerobot(
    source: Annotated[str, typer.Argument(help="Local LeRobot dataset directory or Hub repo id.")],
    kind: Annotated[
        str | None,
        typer.Option(help="demo | autonomous | intervention (default: the dataset's recap_import.json)."),
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(
            help="Task name (default: recap_import.json's, else a name made from LeRobot's task text)."
        ),
    ] = None,
    success_column: Annotated[
        str | None, typer.Option(help="Success label column, e.g. next.success")
    ] = None,
    assume_success: Annotated[
        bool | None,
        typer.Option("--assume-success/--assume-failure", help="Label when no column has it."),
    ] = None,
    intervention_column: Annotated[
        str | None, typer.Option(help="Per-frame bool column marking human-provided actions.")
    ] = None,
    iteration: Annotated[int, typer.Option(help="RECAP iteration the data belongs to.")] = 0,
    revision: Annotated[str | None, typer.Option(help="Hub revision (branch, tag or commit).")] = None,
    state_column: Annotated[str | None, typer.Option(help="Default: observation.state.")] = None,
    action_column: Annotated[str | None, typer.Option(help="Default: action.")] = None,
    batch_episodes: Annotated[int, typer.Option(help="Episodes per atomic write.")] = 200,
    decode_videos: Annotated[
        bool | None,
        typer.Option(
            "--decode-videos/--no-decode-videos",
            help="Decode video features into image_<camera> columns (PNG per step); off: states only, "
            "and a Hub dataset's mp4 files are not downloaded (default: on).",
        ),
    ] = None,
    max_abs_value: Annotated[
        float | None,
        typer.Option(
            help="Refuse state and action values beyond this (default: meta/stats.json's range, else 1e6)."
        ),
    ] = None,
    success_from: Annotated[
        str | None,
        typer.Option(
            help="When meta/episodes and the frames both carry the success column and disagree: meta | "
            "frames (default: refuse the dataset)."
        ),
    ] = None,
    import_file: Annotated[
        bool,
        typer.Option(
            "--import-file/--no-import-file",
            help="Read the dataset's recap_import.json (written by `recap export lerobot` and by robots) for "
            "the options not given here.",
        ),
    ] = True,
    store: StoreOption = None,
) -> None:
    """Import a LeRobot v3.0 (or v2.1) dataset; already stored episodes are skipped.

    Options not given take the values of the dataset's recap_import.json, if it has one: a dataset
    exported by `recap export lerobot` is read back with each episode's task and kind as they were."""
    from tqdm import tqdm

    from recap_core.store import EpisodeValidationError
    from recap_core.store.lerobot import LeRobotFormatError, iter_episodes, open_dataset

    if batch_episodes < 1:
        typer.echo(f"error: --batch-episodes must be >= 1, got {batch_episodes}", err=True)
        raise typer.Exit(code=USER_ERROR_EXIT)
    given = {
        "kind": kind,
        "task": task,
        "success_column": success_column,
        "assume_success": assume_success,
        "intervention_column": intervention_column,
        "state_column": state_column,
        "action_column": action_column,
        "decode_videos": decode_videos,
        "max_abs_value": max_abs_value,
        "success_source": success_from,
    }
    target = _store(store)
    added: list[str] = []
    skipped: list[str] = []
    same_content: list[str] = []
    batch: list = []
    versions: dict[str, int] = target.versions()
    try:
        dataset = open_dataset(source, revision=revision, fetch_videos=decode_videos is not False)
        options = _ingest_options(dataset, given, iteration, import_file)
        if skipped_features := dataset.skipped_features(options):
            typer.echo(f"not imported (video features): {', '.join(skipped_features)}", err=True)
        episodes = iter_episodes(dataset, options)
        with tqdm(total=len(dataset.episode_lengths), unit="episode", desc="ingest") as bar:
            while batch := list(islice(episodes, batch_episodes)):
                result = target.add_episodes(batch)
                added += result.added
                skipped += result.skipped
                same_content += result.same_content
                versions = result.versions
                bar.update(len(batch))
    except (LeRobotFormatError, EpisodeValidationError) as error:
        if isinstance(error, EpisodeValidationError):
            message = _dataset_problems(error, batch)
        else:
            message = " ".join(str(error).split("\n"))
        typer.echo(f"error: {message}", err=True)
        if added:
            typer.echo(
                f"committed before the error: {len(added)} episodes in earlier batches "
                f"(table versions {versions}); re-running after the fix skips them",
                err=True,
            )
        else:
            typer.echo("nothing was written", err=True)
        raise typer.Exit(code=USER_ERROR_EXIT) from error
    report = {"added": len(added), "skipped": len(skipped), "same_content": len(same_content)}
    typer.echo(json.dumps({**report, "versions": versions}))


def _ingest_options(dataset, given: dict, iteration: int, import_file: bool):
    """The command line's options over the dataset's recap_import.json. A fixed --task or --kind replaces
    the file's per-episode column for it, and --success-column its assumed label."""
    from recap_core.store.lerobot import LeRobotOptions
    from recap_core.store.lerobot_sidecar import read_import_file

    sidecar = (read_import_file(dataset.root, dataset.source_id) if import_file else None) or {}
    for fixed, column in (
        ("task", "task_column"),
        ("kind", "kind_column"),
        ("success_column", "assume_success"),
    ):
        if given[fixed] is not None:
            sidecar.pop(column, None)
    chosen = {**sidecar, **{key: value for key, value in given.items() if value is not None}}
    if used := sorted(key for key in sidecar if given.get(key) is None):
        typer.echo(f"options from {dataset.source_id}/recap_import.json: {', '.join(used)}", err=True)
    return LeRobotOptions(iteration=iteration, **chosen)


export_app = command_group(help="Export stored episodes to other formats.")


@export_app.command("lerobot")
def export_lerobot_command(
    out: Annotated[Path, typer.Argument(help="New folder for the LeRobot v3.0 dataset.")],
    task: Annotated[str | None, typer.Option(help="Only this task (default: every task).")] = None,
    kind: Annotated[
        str | None, typer.Option(help="Only this kind: demo | autonomous | intervention (default: all).")
    ] = None,
    iteration: Annotated[int | None, typer.Option(help="Only this RECAP iteration.")] = None,
    fps: Annotated[
        float | None,
        typer.Option(
            help="Frames per second (default: the simulated tasks' control rate, if they share one)."
        ),
    ] = None,
    video: Annotated[
        bool,
        typer.Option(
            "--video/--images",
            help="Cameras as mp4 video features (H.264, small, lossy) or as parquet PNG image features "
            "(default: exact).",
        ),
    ] = False,
    store: StoreOption = None,
) -> None:
    """Write the stored episodes (every task and kind, or those selected) as one LeRobot v3.0 dataset that
    `recap ingest lerobot` reads back identically, task names and kinds included (its recap_import.json
    says how)."""
    from recap_core.store.lerobot_export import describe_selection, export_lerobot

    source = _existing_store(store)
    if fps is None:
        tasks = [task] if task is not None else _stored_tasks(source, kind, iteration)
        if not tasks:
            raise ValueError(f"no {describe_selection(task, kind, iteration)} in the store")
        fps = _shared_simulated_fps(tasks)
    result = export_lerobot(source, out, task=task, kind=kind, iteration=iteration, fps=fps, video=video)
    typer.echo(json.dumps(result.to_dict()))


def _stored_tasks(store, kind: str | None, iteration: int | None) -> list[str]:
    return sorted(set(store.episodes(kind=kind, iteration=iteration).frame["task"].to_list()))


def _shared_simulated_fps(tasks: list[str]) -> float:
    """The control rate of the simulated ``tasks``; several rates (or none known) need --fps."""
    rates = {_simulated_fps(task) for task in tasks}
    if len(rates) > 1:
        raise typer.BadParameter(f"tasks {tasks} run at different rates: pass the recording rate with --fps")
    return rates.pop()


def episodes_summary(
    store: StoreOption = None,
    study: StudyOption = "default",
    output: Annotated[str, typer.Option("--format", help="table | csv | json")] = "table",
) -> None:
    """Summary per task, kind and iteration: episodes, frames, success rate, mean length."""
    from recap_core.store.query import episode_summary

    target = _existing_store(store, study)
    _print_frame(episode_summary(target), output)
    if output == "table":
        typer.echo(f"versions: {target.versions()}")


def query(
    sql: Annotated[
        str, typer.Argument(help="SQL over episodes, steps, derived, metrics and evaluation_outcomes.")
    ],
    store: StoreOption = None,
    study: StudyOption = "default",
    output: Annotated[str, typer.Option("--format", help="table | csv | json")] = "table",
) -> None:
    """Run SQL with DuckDB over every table in the store root, the metrics ledger and its episodes."""
    import duckdb

    from recap_core.store.query import run_query

    try:
        frame = run_query(_existing_store(store, study), sql)
    except duckdb.Error as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=USER_ERROR_EXIT) from error
    _print_frame(frame, output)
