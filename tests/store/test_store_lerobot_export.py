"""`recap export lerobot` writes a LeRobot v3.0 dataset that `recap ingest lerobot` reads back identically:
real Meta-World demonstrations, intervention episodes with corrections and camera images, and a store of
two tasks and every kind exported whole and read back with its task names and kinds (recap_import.json)."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image
from store_helpers import make_episode, write_lerobot_dataset
from typer.testing import CliRunner

from pipelines.cli.main import app
from recap_core.episode import Episode
from recap_core.lerobot_v3 import layout
from recap_core.store import EpisodeStore
from schemas.episodes import EPISODE_KINDS


def _png(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((6, 8, 3), value, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _interventions(count: int) -> list[Episode]:
    rng = np.random.default_rng(0)
    episodes = []
    for index in range(count):
        length = 5 + index
        episodes.append(
            Episode(
                episode_id=f"corrected-{index}",
                task="fleet-pick",
                prompt="pick up the cube",
                kind="intervention",
                success=index % 2 == 0,
                observations=rng.normal(size=(length, 7)),
                actions=rng.uniform(-1, 1, size=(length, 3)),
                is_correction=np.arange(length) >= length - 2,
                iteration=1,
                robot="arm-7",
                images={"wrist": [_png(10 * index + t) for t in range(length)]},
            )
        )
    return episodes


def _invoke(*args: str) -> dict:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    lines = result.output.replace("\r", "\n").splitlines()  # progress bars (stderr) are interleaved
    return json.loads([line[line.index("{") :] for line in lines if "{" in line][-1])


def _stored(store: EpisodeStore, task: str) -> list[dict]:
    """Content of every episode of ``task`` in a comparable form (ids and timestamps differ by design)."""
    frame = store.episodes(task=task).frame.sort("iteration", "collected_at", "episode_id")
    out = []
    for row in frame.iter_rows(named=True):
        steps = store.episode_steps(row["episode_id"])
        cameras = [c.removeprefix("image_") for c in steps.columns if c.startswith("image_")]
        out.append(
            {
                "task": row["task"],
                "prompt": row["prompt"],
                "kind": row["kind"],
                "success": row["success"],
                "observations": np.asarray(steps["observation"].to_list(), dtype=np.float32),
                "actions": np.asarray(steps["action"].to_list(), dtype=np.float32),
                "is_correction": steps["is_correction"].to_list(),
                "images": {c: store.episode_images(row["episode_id"], c) for c in cameras},
            }
        )
    return out


def _assert_same(exported: list[dict], imported: list[dict]) -> None:
    assert len(imported) == len(exported)
    for before, after in zip(exported, imported, strict=True):
        for key in ("task", "prompt", "kind", "success", "is_correction", "images"):
            assert after[key] == before[key], key
        np.testing.assert_array_equal(after["observations"], before["observations"])
        np.testing.assert_array_equal(after["actions"], before["actions"])


def test_interventions_with_images_round_trip(tmp_path):
    source = EpisodeStore(tmp_path / "source")
    source.add_episodes(_interventions(4))
    out = tmp_path / "export"
    summary = _invoke("export", "lerobot", str(out), "--task", "fleet-pick", "--kind", "intervention",
                      "--fps", "15", "--store", str(source.uri))  # fmt: skip
    assert summary == {"path": str(out), "episodes": 4, "frames": 26, "cameras": ["wrist"]}
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 15 and info["robot_type"] == "arm-7"
    assert info["features"]["observation.images.wrist"]["shape"] == [6, 8, 3]
    wrist_stats = json.loads((out / "meta" / "stats.json").read_text())["observation.images.wrist"]
    assert wrist_stats["count"] == [26] and np.asarray(wrist_stats["mean"]).shape == (3, 1, 1)
    episodes_meta = pq.read_table(out / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    assert episodes_meta.column("length").to_pylist() == [5, 6, 7, 8]
    sidecar = json.loads((out / "recap_import.json").read_text())
    target = EpisodeStore(tmp_path / "target")
    _invoke("ingest", "lerobot", str(out), "--kind", sidecar["kind"], "--task", sidecar["task"],
            "--success-column", sidecar["success_column"],
            "--intervention-column", sidecar["intervention_column"], "--iteration", "1",
            "--store", str(target.uri))  # fmt: skip
    _assert_same(_stored(source, "fleet-pick"), _stored(target, "fleet-pick"))


def test_meta_world_demos_round_trip_at_the_simulator_rate(tmp_path, monkeypatch):
    monkeypatch.setenv("RECAP_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RECAP_STORE_URI", raising=False)
    _invoke("collect", "demos", "--task", "reach-v3", "--episodes", "3", "--max-steps", "40")
    out = tmp_path / "reach-demos"
    assert _invoke("export", "lerobot", str(out), "--task", "reach-v3", "--kind", "demo")["episodes"] == 3
    assert json.loads((out / "meta" / "info.json").read_text())["fps"] == pytest.approx(80.0)
    target = tmp_path / "target"
    _invoke("ingest", "lerobot", str(out), "--kind", "demo", "--task", "reach-v3",
            "--success-column", "next.success", "--store", str(target))  # fmt: skip
    _assert_same(_stored(EpisodeStore(), "reach-v3"), _stored(EpisodeStore(target), "reach-v3"))


def test_nothing_is_written_for_an_empty_selection_or_an_existing_folder(tmp_path):
    source = EpisodeStore(tmp_path / "source")
    source.add_episodes(_interventions(1))
    runner = CliRunner()
    store_option = ["--store", str(source.uri)]
    export = ["export", "lerobot"]
    empty = runner.invoke(
        app,
        [
            *export,
            str(tmp_path / "none"),
            "--task",
            "fleet-pick",
            "--kind",
            "demo",
            "--fps",
            "10",
            *store_option,
        ],
    )
    assert empty.exit_code != 0 and "no demo episodes of task 'fleet-pick'" in str(empty.exception)
    (tmp_path / "taken").mkdir()
    taken = runner.invoke(
        app,
        [*export, str(tmp_path / "taken"), "--task", "fleet-pick", "--kind", "intervention", "--fps", "10",
         *store_option],
    )  # fmt: skip
    assert taken.exit_code != 0 and "already exists" in str(taken.exception)
    unsimulated = runner.invoke(
        app, [*export, str(tmp_path / "x"), "--task", "fleet-pick", "--kind", "intervention", *store_option]
    )
    assert unsimulated.exit_code == 2 and "--fps" in unsimulated.output
    source.add_episodes([make_episode(0, task="reach-v3")])  # 39-d states beside fleet-pick's 7-d ones
    mixed = runner.invoke(app, [*export, str(tmp_path / "mixed"), "--fps", "10", *store_option])
    assert mixed.exit_code != 0 and "one LeRobot dataset has one shape per feature" in str(mixed.exception)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source", "taken"], "nor a staging folder"


def _mixed_store(tmp_path) -> EpisodeStore:
    """Every kind, imported from real v3.0 folders of two task texts: demos (iteration 0) under one task
    name given for both texts, autonomous and intervention episodes (iteration 1, with per-frame
    corrections) under names made from the texts; cameras on all. Three tasks, and a task name that
    cannot be told from its prompt."""
    uri = str(tmp_path / "source")
    for seed, (kind, extra) in enumerate(
        (
            ("demo", ["--task", "station-pick"]),
            ("autonomous", ["--iteration", "1"]),
            ("intervention", ["--intervention-column", "is_intervention", "--iteration", "1"]),
        )
    ):
        root = tmp_path / f"raw-{kind}"
        write_lerobot_dataset(root, [5 + seed, 7, 4 + 2 * seed], seed=seed, with_images=True)
        _invoke("ingest", "lerobot", str(root), "--kind", kind, "--success-column", "next.success",
                *extra, "--store", uri)  # fmt: skip
    return EpisodeStore(uri)


def _every_episode(store: EpisodeStore) -> list[dict]:
    """``_stored`` of every task, in an order that depends on content only (not on ids or times)."""
    tasks = sorted(set(store.episodes().frame["task"].to_list()))
    episodes = [episode for task in tasks for episode in _stored(store, task)]
    return sorted(episodes, key=lambda e: (e["task"], e["kind"], e["observations"].tobytes()))


def test_a_multi_task_dataset_of_every_kind_round_trips_with_no_filters(tmp_path):
    source = _mixed_store(tmp_path)
    before = _every_episode(source)
    assert len({e["task"] for e in before}) == 3 and {e["kind"] for e in before} == set(EPISODE_KINDS)
    assert layout.EPISODE_KINDS == EPISODE_KINDS, "the writer's copy of the kinds"
    assert any(any(e["is_correction"]) for e in before) and not all(e["success"] for e in before)
    out = tmp_path / "everything"
    summary = _invoke("export", "lerobot", str(out), "--fps", "10", "--store", str(source.uri))
    assert summary["episodes"] == 9 and summary["cameras"] == ["wrist"]

    tasks = pq.read_table(out / "meta" / "tasks.parquet").to_pylist()
    assert sorted(row["task"] for row in tasks) == ["open the drawer", "pick up the cube"]
    assert sorted(row["task_index"] for row in tasks) == [0, 1]
    # LeRobot reads tasks.parquet with pandas and takes a frame's task as the index label: the task text
    index = pq.read_schema(out / "meta" / "tasks.parquet").pandas_metadata["index_columns"]
    assert index == ["task"]
    meta = pq.read_table(out / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    per_episode = sorted((row["recap/task"], row["recap/kind"], row["recap/success"]) for row in meta)
    assert per_episode == sorted((e["task"], e["kind"], e["success"]) for e in before)
    assert [row["recap/iteration"] for row in meta].count(0) == 3  # the demos
    frames = pq.read_table(out / "data" / "chunk-000" / "file-000.parquet").to_pylist()
    prompt_of = {row["task_index"]: row["task"] for row in tasks}
    assert all(prompt_of[f["task_index"]] == meta[f["episode_index"]]["tasks"][0] for f in frames)
    assert json.loads((out / "recap_import.json").read_text()) == {
        "task_column": "recap/task",
        "kind_column": "recap/kind",
        "success_column": "next.success",
        "intervention_column": "is_intervention",
        "collected_by_column": "recap/collected_by",
    }

    target = EpisodeStore(tmp_path / "target")
    assert _invoke("ingest", "lerobot", str(out), "--store", str(target.uri))["added"] == 9  # no options
    _assert_same(before, _every_episode(target))


def test_filters_select_episodes_and_the_command_line_overrides_the_import_file(tmp_path):
    source = _mixed_store(tmp_path)
    task = next(t for t in source.episodes().frame["task"].to_list() if t.startswith("pick-up-the-cube-"))
    picked = tmp_path / "picked"
    _invoke("export", "lerobot", str(picked), "--task", task, "--kind", "intervention", "--fps", "10",
            "--store", str(source.uri))  # fmt: skip
    sidecar = json.loads((picked / "recap_import.json").read_text())
    assert (sidecar["task"], sidecar["kind"]) == (task, "intervention") and "kind_column" not in sidecar
    demos = tmp_path / "demos"
    assert _invoke("export", "lerobot", str(demos), "--iteration", "0", "--fps", "10",
                   "--store", str(source.uri))["episodes"] == 3  # fmt: skip
    sidecar = json.loads((demos / "recap_import.json").read_text())
    assert (sidecar["task"], sidecar["kind"]) == ("station-pick", "demo")
    two_kinds = tmp_path / "two-kinds"
    _invoke("export", "lerobot", str(two_kinds), "--task", task, "--fps", "10", "--store", str(source.uri))
    sidecar = json.loads((two_kinds / "recap_import.json").read_text())
    assert sidecar["task"] == task and sidecar["kind_column"] == "recap/kind" and "kind" not in sidecar

    everything = tmp_path / "everything"
    _invoke("export", "lerobot", str(everything), "--fps", "10", "--store", str(source.uri))
    target = EpisodeStore(tmp_path / "target")
    _invoke("ingest", "lerobot", str(everything), "--kind", "autonomous", "--task", "one-station",
            "--store", str(target.uri))  # fmt: skip
    stored = target.episodes().frame
    assert (
        stored.height == 9
        and set(stored["kind"]) == {"autonomous"}
        and set(stored["task"]) == {"one-station"}
    )
    assert target.load_steps(task="one-station").is_correction.any(), "intervention_column still read"
    ignored = CliRunner().invoke(app, ["ingest", "lerobot", str(everything), "--no-import-file",
                                       "--store", str(tmp_path / "none")])  # fmt: skip
    assert ignored.exit_code == 2 and "no episode kind" in ignored.output
