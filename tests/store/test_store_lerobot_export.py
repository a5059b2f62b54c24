"""`recap export lerobot` writes a LeRobot v3.0 dataset that `recap ingest lerobot` reads back identically:
real Meta-World demonstrations, and intervention episodes with corrections and camera images."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from pipelines.cli.main import app
from recap_core.episode import Episode
from recap_core.store import EpisodeStore


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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source", "taken"]
