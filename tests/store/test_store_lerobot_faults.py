"""A corpus of broken LeRobot datasets, each with the refusal it must get.

Every case is built in the test from a valid dataset, imported through `recap ingest lerobot`, and must
exit 2 with a one-line error naming the episode, column or file and the bad value, with nothing written.
Before these checks, string or fractional flags marked every frame a correction, missing or extra rows
were imported silently, and corrupt files raised raw Arrow/JSON tracebacks.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from store_helpers import write_lerobot_dataset
from typer.testing import CliRunner

from pipelines.cli.main import app
from recap_core.store import EpisodeStore

LENGTHS = [7, 12, 30, 5, 9]


def _data_files(root: Path) -> list[Path]:
    return sorted((root / "data" / "chunk-000").glob("*.parquet"))


def _replace_column(root: Path, column: str, make) -> None:
    """Rewrite ``column`` in every data file with ``make(n_rows)``."""
    for path in _data_files(root):
        table = pq.read_table(path)
        index = table.schema.get_field_index(column)
        pq.write_table(table.set_column(index, column, make(table.num_rows)), path)


def _edit_meta_lengths(root: Path, edit) -> None:
    path = root / "meta" / "episodes" / "chunk-000" / "file-000.parquet"
    table = pq.read_table(path)
    lengths = table.column("length").to_pylist()
    edit(lengths)
    pq.write_table(
        table.set_column(table.schema.get_field_index("length"), "length", pa.array(lengths)), path
    )


def _edit_info(root: Path, edit) -> None:
    info = json.loads((root / "meta" / "info.json").read_text())
    edit(info)
    (root / "meta" / "info.json").write_text(json.dumps(info))


def _drop_episode_rows(root: Path, episode: int) -> None:
    for path in _data_files(root):
        table = pq.read_table(path)
        keep = [e != episode for e in table.column("episode_index").to_pylist()]
        pq.write_table(table.filter(pa.array(keep)), path)


def _extra_rows(root: Path) -> None:
    """meta says episode 4 has 4 frames, the data has 9 (the 5 extra frames would be stored)."""

    def edit(lengths):
        lengths[4] = 4

    _edit_meta_lengths(root, edit)
    _edit_info(root, lambda info: info.update(total_frames=sum(LENGTHS) - 5))


def _set_value(root: Path, column: str, row: int, element: int, value: float) -> None:
    """One element of one row of a vector column, in the data file that holds that row."""
    offset = 0
    for path in _data_files(root):
        table = pq.read_table(path)
        if offset <= row < offset + table.num_rows:
            index = table.schema.get_field_index(column)
            vectors = table.column(column).to_pylist()
            vectors[row - offset][element] = value
            pq.write_table(
                table.set_column(index, column, pa.array(vectors, table.schema.field(index).type)), path
            )
            return
        offset += table.num_rows


def _with_stats(root: Path, column: str, low: float, high: float) -> None:
    """meta/stats.json as LeRobot writes it, for one feature."""
    dim = len(pq.read_table(_data_files(root)[0]).column(column)[0].as_py())
    stats = {column: {"min": [low] * dim, "max": [high] * dim, "mean": [0.0] * dim, "std": [0.5] * dim}}
    (root / "meta" / "stats.json").write_text(json.dumps(stats))


def _huge_action_beyond_stats(root: Path) -> None:
    _replace_column(root, "action", lambda n: pa.array([[0.5, -0.5]] * n, pa.list_(pa.float32())))
    _with_stats(root, "action", -0.999, 0.999)
    _set_value(root, "action", 15, 1, 3e38)


def _int64_states(root: Path) -> None:
    _replace_column(
        root, "observation.state", lambda n: pa.array([[1, 2, 3, 4, 5, 6]] * n, pa.list_(pa.int64()))
    )


def _one_task_index_two_texts(root: Path) -> None:
    path = root / "meta" / "tasks.parquet"
    pq.write_table(pa.table({"task_index": [0, 1, 0], "__index_level_0__": ["pick", "open", "place"]}), path)


def _meta_success(root: Path, values: list) -> None:
    path = root / "meta" / "episodes" / "chunk-000" / "file-000.parquet"
    table = pq.read_table(path)
    pq.write_table(table.append_column("next.success", pa.array(values, pa.bool_())), path)


def _null_success_frame(root: Path) -> None:
    """Episode 0 succeeds on its last frame (row 6): that frame's label set to null."""

    for path in _data_files(root):
        table = pq.read_table(path)
        index = table.schema.get_field_index("next.success")
        values = table.column("next.success").to_pylist()
        rows = table.column("episode_index").to_pylist()
        frames = table.column("frame_index").to_pylist()
        values = [
            None if (e, f) == (0, LENGTHS[0] - 1) else v for v, e, f in zip(values, rows, frames, strict=True)
        ]
        pq.write_table(table.set_column(index, "next.success", pa.array(values, pa.bool_())), path)


def _not_images(root: Path) -> None:
    column = "observation.images.wrist"
    for path in _data_files(root):
        table = pq.read_table(path)
        index = table.schema.get_field_index(column)
        rows = [{"bytes": b"not an image", "path": None}] * table.num_rows
        pq.write_table(table.set_column(index, column, pa.array(rows, table.schema.field(index).type)), path)


def _camera_escaping(root: Path) -> None:
    for path in _data_files(root):
        table = pq.read_table(path)
        index = table.schema.get_field_index("observation.images.wrist")
        pq.write_table(table.rename_columns([
            "observation.images.../../x" if i == index else n for i, n in enumerate(table.column_names)
        ]), path)  # fmt: skip
    _edit_info(root, lambda info: info["features"].update(
        {"observation.images.../../x": info["features"].pop("observation.images.wrist")}
    ))  # fmt: skip


def _per_episode(root: Path, column: str | None, values: list | None, sidecar: dict) -> None:
    """A per-episode column in meta/episodes (as our exports and robots write recap/kind and recap/task)
    and the recap_import.json that names it."""
    if column is not None:
        path = root / "meta" / "episodes" / "chunk-000" / "file-000.parquet"
        pq.write_table(pq.read_table(path).append_column(column, pa.array(values, pa.string())), path)
    (root / "recap_import.json").write_text(json.dumps(sidecar))


# (mutation, extra CLI args, expected error)
CASES = {
    # per-episode task and kind (recap_import.json's task_column / kind_column)
    "a kind column naming a kind that does not exist": (
        lambda r: _per_episode(
            r, "recap/kind", ["demo", "teleop", "demo", "demo", "demo"], {"kind_column": "recap/kind"}
        ),
        ["--assume-success"],
        r"episode 1: meta/episodes column 'recap/kind' = 'teleop': not one of",
    ),
    "a task column with a name that leaves its folder": (
        lambda r: _per_episode(
            r,
            "recap/task",
            ["pick", "../x", "pick", "pick", "pick"],
            {"task_column": "recap/task", "kind": "demo"},
        ),
        ["--assume-success"],
        r"episode 1: column 'recap/task': task name '../x' must be",
    ),
    "a null in the kind column": (
        lambda r: _per_episode(
            r, "recap/kind", ["demo", "demo", None, "demo", "demo"], {"kind_column": "recap/kind"}
        ),
        ["--assume-success"],
        r"episode 2: meta/episodes column 'recap/kind' = None: need a kind",
    ),
    "intervention episodes without an intervention column": (
        lambda r: _per_episode(r, "recap/kind", ["intervention"] * 5, {"kind_column": "recap/kind"}),
        ["--assume-success"],
        r"episode 0 is an intervention episode: pass --intervention-column",
    ),
    "recap_import.json names a column meta/episodes lacks": (
        lambda r: _per_episode(r, None, None, {"kind_column": "recap/kind"}),
        ["--assume-success"],
        r"meta/episodes has no column 'recap/kind'; it has \['episode_index', ",
    ),
    "recap_import.json with an unknown key": (
        lambda r: _per_episode(r, None, None, {"kind": "demo", "colour": "red"}),
        ["--assume-success"],
        r"recap_import.json has unknown keys \['colour'\]",
    ),
    "no kind from the command line or recap_import.json": (
        lambda r: None,
        ["--assume-success"],
        r"no episode kind: pass --kind",
    ),
    # implausible data (each used to be stored as it was)
    "action of 3e38, stats.json says max 0.999": (
        _huge_action_beyond_stats,
        ["--kind", "demo", "--assume-success"],
        r"episode 1: column 'action' frame 8 element 1 = 3e\+38 is outside \[-1.01898, 1.01898\] "
        r"\(meta/stats.json's min and max\); pass --max-abs-value",
    ),
    "state of 1e30, no stats.json": (
        lambda r: _set_value(r, "observation.state", 3, 2, 1e30),
        ["--kind", "demo", "--assume-success"],
        r"episode 0: column 'observation.state' frame 3 element 2 = 1e\+30 is outside \[-1e\+06, 1e\+06\] "
        r"\(the default bound\)",
    ),
    "int64 states, info.json declares float32": (
        _int64_states,
        ["--kind", "demo", "--assume-success"],
        r"episode 0: column 'observation.state' holds int64 values, meta/info.json declares float32",
    ),
    "tasks.parquet maps one task_index to two texts": (
        _one_task_index_two_texts,
        ["--kind", "demo", "--assume-success"],
        r"tasks.parquet: task_index 0 names two tasks, 'pick' and 'place'",
    ),
    "meta/episodes success contradicts the frames": (
        lambda r: _meta_success(r, [True, True, True, False, True]),  # episode 1 failed in its frames
        ["--kind", "demo", "--success-column", "next.success"],
        r"episode 1: meta/episodes column 'next.success' = True, but its frames say False; choose one with "
        r"--success-from meta or --success-from frames",
    ),
    "the only True success frame is null": (
        _null_success_frame,
        ["--kind", "demo", "--success-column", "next.success"],
        r"episode 0: column 'next.success' frame 6 is null",
    ),
    "image bytes that are not images": (
        _not_images,
        ["--kind", "demo", "--assume-success"],
        r"dataset episode 0 \(stored id \w+\): column 'image_wrist' = b'not an i': frame t=0 is "
        r"not a readable image",
    ),
    "a camera name that leaves its folder": (
        _camera_escaping,
        ["--kind", "demo", "--assume-success"],
        r"feature 'observation.images.../../x': its camera name '__/__/x' must be letters, digits",
    ),
    # unclear messages
    "features block is a list": (
        lambda r: _edit_info(r, lambda info: info.update(features=list(info["features"]))),
        ["--kind", "demo", "--assume-success"],
        r"meta/info.json: 'features' must map each feature name to its spec \(a JSON object\), got list",
    ),
    "a null in meta/episodes' success": (
        lambda r: _meta_success(r, [True, False, None, False, True]),
        ["--kind", "demo", "--success-column", "next.success", "--success-from", "meta"],
        r"episode 2: meta/episodes column 'next.success' is null",
    ),
    "intervention flags as yes/no strings": (
        lambda r: _replace_column(
            r, "is_intervention", lambda n: pa.array(["yes", "no"] * (n // 2) + ["no"] * (n % 2))
        ),
        ["--kind", "intervention", "--intervention-column", "is_intervention", "--assume-success"],
        r"episode 0: column 'is_intervention' = 'yes' \(string\): a flag must be boolean or 0/1",
    ),
    "intervention flags as 0.5 floats": (
        lambda r: _replace_column(r, "is_intervention", lambda n: pa.array([0.5] * n)),
        ["--kind", "intervention", "--intervention-column", "is_intervention", "--assume-success"],
        r"column 'is_intervention' = 0.5 \(double\)",
    ),
    "intervention flags as 2s": (
        lambda r: _replace_column(r, "is_intervention", lambda n: pa.array([2] * n, pa.int64())),
        ["--kind", "intervention", "--intervention-column", "is_intervention", "--assume-success"],
        r"column 'is_intervention' = 2: a flag must be boolean or 0/1",
    ),
    "success as strings": (
        lambda r: _replace_column(r, "next.success", lambda n: pa.array(["true"] * n)),
        ["--kind", "demo", "--success-column", "next.success"],
        r"column 'next.success' = 'true' \(string\)",
    ),
    "action as strings": (
        lambda r: _replace_column(r, "action", lambda n: pa.array([["0.1", "0.2"]] * n)),
        ["--kind", "demo", "--assume-success"],
        r"episode 0: column 'action' = \['0.1', '0.2'\] \(list<element: string>\): expected numeric vectors",
    ),
    "state as scalars": (
        lambda r: _replace_column(r, "observation.state", lambda n: pa.array([0.5] * n)),
        ["--kind", "demo", "--assume-success"],
        r"column 'observation.state' = 0.5 \(double\): expected numeric vectors",
    ),
    "episode listed in meta with no rows": (
        lambda r: _drop_episode_rows(r, 3),
        ["--kind", "demo", "--assume-success"],
        r"episode 3: listed in meta/episodes \(length 5\) but has no rows in data/",
    ),
    "more rows than meta says": (
        _extra_rows,
        ["--kind", "demo", "--assume-success"],
        r"episode 4: column 'frame_index' has \d+ frames, meta/episodes says length 4",
    ),
    "info.json total_frames wrong": (
        lambda r: _edit_info(r, lambda info: info.update(total_frames=999)),
        ["--kind", "demo", "--assume-success"],
        r"info.json: column 'total_frames' = 999, but meta/episodes lists 63",
    ),
    "info.json total_episodes wrong": (
        lambda r: _edit_info(r, lambda info: info.update(total_episodes=6)),
        ["--kind", "demo", "--assume-success"],
        r"column 'total_episodes' = 6, but meta/episodes lists 5",
    ),
    "info.json state shape wrong": (
        lambda r: _edit_info(r, lambda info: info["features"]["observation.state"].update(shape=[7])),
        ["--kind", "demo", "--assume-success"],
        r"column 'observation.state' has vectors of size 6, meta/info.json declares shape \[7\]",
    ),
    "truncated data file": (
        lambda r: _data_files(r)[1].write_bytes(_data_files(r)[1].read_bytes()[:200]),
        ["--kind", "demo", "--assume-success"],
        r"file-001.parquet: not a readable parquet file",
    ),
    "garbage meta parquet": (
        lambda r: (r / "meta" / "episodes" / "chunk-000" / "file-000.parquet").write_bytes(b"not parquet"),
        ["--kind", "demo", "--assume-success"],
        r"meta/episodes/chunk-000/file-000.parquet: not a readable parquet file",
    ),
    "invalid info.json": (
        lambda r: (r / "meta" / "info.json").write_text('{"codebase_version": "v3.0", '),
        ["--kind", "demo", "--assume-success"],
        r"meta/info.json: not valid JSON",
    ),
    "batch of zero episodes": (
        lambda r: None,
        ["--kind", "demo", "--assume-success", "--batch-episodes", "0"],
        r"--batch-episodes must be >= 1, got 0",
    ),
}


IMAGE_CASES = {"image bytes that are not images", "a camera name that leaves its folder"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_dataset_is_refused_clearly_and_nothing_is_written(tmp_path, case):
    mutate, args, expected = CASES[case]
    root = tmp_path / "ds"
    write_lerobot_dataset(root, LENGTHS, rows_per_file=10, with_images=case in IMAGE_CASES)
    mutate(root)
    store = tmp_path / "lance"
    result = CliRunner().invoke(app, ["ingest", "lerobot", str(root), *args, "--store", str(store)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.output
    assert re.search(expected, errors[0]), errors[0]
    assert EpisodeStore(store).versions() == {}, "nothing may be written"


def test_the_same_dataset_from_another_path_is_recognised_by_content(tmp_path):
    write_lerobot_dataset(tmp_path / "ds", LENGTHS)
    shutil.copytree(tmp_path / "ds", tmp_path / "copy")
    runner = CliRunner()
    base = ["ingest", "lerobot", "--kind", "demo", "--assume-success", "--store", str(tmp_path / "lance")]
    first = runner.invoke(app, [*base[:2], str(tmp_path / "ds"), *base[2:]])
    assert json.loads(first.stdout.strip().splitlines()[-1])["added"] == 5
    copy = runner.invoke(app, [*base[:2], str(tmp_path / "copy"), *base[2:]])
    assert copy.exit_code == 0, copy.output
    report = json.loads(copy.stdout.strip().splitlines()[-1])
    assert report["added"] == 0 and report["skipped"] == 5 and report["same_content"] == 5
    assert EpisodeStore(tmp_path / "lance").episodes().frame.height == 5


def test_data_that_really_is_that_large_imports_with_an_explicit_bound_and_a_side_can_be_chosen(tmp_path):
    root = tmp_path / "ds"
    write_lerobot_dataset(root, LENGTHS, rows_per_file=10)
    _huge_action_beyond_stats(root)
    _meta_success(root, [True, True, True, False, True])
    runner = CliRunner()
    base = ["ingest", "lerobot", str(root), "--kind", "demo", "--store", str(tmp_path / "lance")]
    result = runner.invoke(
        app,
        [*base, "--success-column", "next.success", "--max-abs-value", "1e39", "--success-from", "frames"],
    )
    assert result.exit_code == 0, result.output
    stored = EpisodeStore(tmp_path / "lance").episodes().frame.sort("source")
    assert stored["success"].to_list() == [True, False, True, False, True], "the frames' labels"
    assert EpisodeStore(tmp_path / "lance").load_steps().actions.max() == pytest.approx(3e38, rel=1e-6)
