"""`recap ingest`, `recap export`, `recap episodes` and `recap query`: the episode store from the shell."""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from pipelines.cli.options import USER_ERROR_EXIT, KindOption, StoreOption, StudyOption, command_group


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
    kind: KindOption,
    task: Annotated[
        str | None, typer.Option(help="Task name (default: a name made from LeRobot's task text).")
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
    state_column: str = "observation.state",
    action_column: str = "action",
    batch_episodes: Annotated[int, typer.Option(help="Episodes per atomic write.")] = 200,
    decode_videos: Annotated[
        bool,
        typer.Option(
            "--decode-videos/--no-decode-videos",
            help="Decode video features into image_<camera> columns (PNG per step); off: states only, "
            "and a Hub dataset's mp4 files are not downloaded.",
        ),
    ] = True,
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
    store: StoreOption = None,
) -> None:
    """Import a LeRobot v3.0 (or v2.1) dataset; already stored episodes are skipped."""
    from tqdm import tqdm

    from recap_core.store import EpisodeValidationError
    from recap_core.store.lerobot import LeRobotFormatError, LeRobotOptions, iter_episodes, open_dataset

    if batch_episodes < 1:
        typer.echo(f"error: --batch-episodes must be >= 1, got {batch_episodes}", err=True)
        raise typer.Exit(code=USER_ERROR_EXIT)
    options = LeRobotOptions(
        kind=kind,
        task=task,
        success_column=success_column,
        assume_success=assume_success,
        intervention_column=intervention_column,
        iteration=iteration,
        state_column=state_column,
        action_column=action_column,
        decode_videos=decode_videos,
        max_abs_value=max_abs_value,
        success_source=success_from,
    )
    target = _store(store)
    added: list[str] = []
    skipped: list[str] = []
    same_content: list[str] = []
    batch: list = []
    versions: dict[str, int] = target.versions()
    try:
        dataset = open_dataset(source, revision=revision, fetch_videos=decode_videos)
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


export_app = command_group(help="Export stored episodes to other formats.")


@export_app.command("lerobot")
def export_lerobot_command(
    out: Annotated[Path, typer.Argument(help="New folder for the LeRobot v3.0 dataset.")],
    task: Annotated[str, typer.Option(help="The task whose episodes to export.")],
    kind: KindOption,
    iteration: Annotated[int | None, typer.Option(help="Only this RECAP iteration.")] = None,
    fps: Annotated[
        float | None, typer.Option(help="Frames per second (default: the simulated task's control rate).")
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
    """Write one task's episodes of one kind as a LeRobot v3.0 dataset that `recap ingest lerobot` (with
    the options in its recap_import.json) reads back identically."""
    from recap_core.store.lerobot_export import export_lerobot

    if fps is None:
        fps = _simulated_fps(task)
    result = export_lerobot(
        _existing_store(store), out, task=task, kind=kind, iteration=iteration, fps=fps, video=video
    )
    typer.echo(json.dumps(result.to_dict()))


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
    sql: Annotated[str, typer.Argument(help="SQL over episodes, steps, derived and ledger tables.")],
    store: StoreOption = None,
    study: StudyOption = "default",
    output: Annotated[str, typer.Option("--format", help="table | csv | json")] = "table",
) -> None:
    """Run SQL with DuckDB over every table in the store root and the metrics ledger."""
    import duckdb

    from recap_core.store.query import run_query

    try:
        frame = run_query(_existing_store(store, study), sql)
    except duckdb.Error as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=USER_ERROR_EXIT) from error
    _print_frame(frame, output)
