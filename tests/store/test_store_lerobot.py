"""LeRobot import: v3.0 fixture on disk (episodes crossing files), v2.1, Hub cache offline, bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import polars as pl
import pytest
from store_helpers import frame_png, write_lerobot_dataset
from typer.testing import CliRunner

from pipelines.cli.main import app
from recap_core.episode import stable_episode_id
from recap_core.store import EpisodeStore
from recap_core.store.lerobot import LeRobotFormatError, LeRobotOptions, iter_episodes, open_dataset
from recap_core.store.query import run_query

LENGTHS = [7, 12, 30, 5, 9]


def _import(root, **options):
    dataset = open_dataset(str(root))
    return dataset, list(iter_episodes(dataset, LeRobotOptions(**options)))


def test_v3_import_maps_columns_and_labels(tmp_path):
    frames = write_lerobot_dataset(tmp_path / "ds", LENGTHS, rows_per_file=10, video_without_files=True)
    options = dict(kind="intervention", success_column="next.success", intervention_column="is_intervention")
    dataset, episodes = _import(tmp_path / "ds", decode_videos=False, **options)
    assert dataset.version == "v3.0" and len(dataset.data_files) == 7
    assert dataset.skipped_features(LeRobotOptions(decode_videos=False, **options)) == [
        "observation.images.front"
    ]
    assert dataset.skipped_features(LeRobotOptions(**options)) == []
    assert all(e.images is None for e in episodes)
    assert [e.length for e in episodes] == LENGTHS
    for index, (episode, source) in enumerate(zip(episodes, frames, strict=True)):
        np.testing.assert_array_equal(episode.observations, source["observation.state"])
        np.testing.assert_array_equal(episode.actions, source["action"])
        np.testing.assert_array_equal(episode.is_correction, source["is_intervention"])
        assert episode.success == (index % 2 == 0)
        assert episode.prompt == ("pick up the cube", "open the drawer")[index % 2]
        assert episode.episode_id == stable_episode_id("lerobot", str((tmp_path / "ds").resolve()), index)
        assert episode.robot == "so100"


def test_v3_import_into_store_is_idempotent(tmp_path):
    write_lerobot_dataset(tmp_path / "ds", LENGTHS)
    store = EpisodeStore(tmp_path / "lance")
    _, episodes = _import(tmp_path / "ds", kind="demo", task="so100-pick", assume_success=True)
    assert len(store.add_episodes(episodes).added) == 5
    _, again = _import(tmp_path / "ds", kind="demo", task="so100-pick", assume_success=True)
    result = store.add_episodes(again)
    assert result.added == [] and len(result.skipped) == 5
    steps = store.load_steps(task="so100-pick")
    assert len(steps) == sum(LENGTHS) and steps.observations.shape[1] == 6


def test_v21_layout_is_read_too(tmp_path):
    frames = write_lerobot_dataset(tmp_path / "ds", LENGTHS, version="v2.1")
    dataset, episodes = _import(tmp_path / "ds", kind="autonomous", success_column="next.success")
    assert dataset.version == "v2.1" and len(episodes) == 5
    np.testing.assert_array_equal(episodes[2].actions, frames[2]["action"])
    assert [e.success for e in episodes] == [True, False, True, False, True]


def test_image_features_become_blob_columns(tmp_path):
    write_lerobot_dataset(tmp_path / "ds", [3, 4], with_images=True)
    _, episodes = _import(tmp_path / "ds", kind="demo", assume_success=True)
    store = EpisodeStore(tmp_path / "lance")
    store.add_episodes(episodes)
    assert store.episode_images(episodes[1].episode_id, "wrist") == [frame_png(i) for i in range(3, 7)]
    # SQL sees the encoded frames (`SELECT *` failed on the blob column's declared type before)
    every_column = run_query(store, "SELECT * FROM steps ORDER BY episode_id, t")
    assert every_column.height == 7 and every_column["image_wrist"].dtype == pl.Binary
    frames = run_query(
        store, f"SELECT t, image_wrist FROM steps WHERE episode_id = '{episodes[1].episode_id}' ORDER BY t"
    )
    assert frames["image_wrist"].to_list() == [frame_png(i) for i in range(3, 7)]


def test_missing_labels_and_columns_are_named(tmp_path):
    write_lerobot_dataset(tmp_path / "ds", LENGTHS)
    with pytest.raises(LeRobotFormatError, match="no success label"):
        _import(tmp_path / "ds", kind="demo")
    with pytest.raises(LeRobotFormatError, match="needs --intervention-column"):
        _import(tmp_path / "ds", kind="intervention", assume_success=True)
    with pytest.raises(LeRobotFormatError, match=r"lack column\(s\) \['observation.joints'\]"):
        _import(tmp_path / "ds", kind="demo", assume_success=True, state_column="observation.joints")
    with pytest.raises(LeRobotFormatError, match=r"'next\.done' is in neither"):
        _import(tmp_path / "ds", kind="demo", success_column="next.done")


def test_frame_index_gap_is_refused(tmp_path):
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    write_lerobot_dataset(tmp_path / "ds", [4, 4], rows_per_file=100)
    path = tmp_path / "ds" / "data" / "chunk-000" / "file-000.parquet"
    table = pq.read_table(path)
    frame_index = table.column("frame_index").to_numpy().copy()
    frame_index[6] = 9
    column = table.schema.get_field_index("frame_index")
    pq.write_table(table.set_column(column, "frame_index", pc.cast(frame_index, "int64")), path)
    with pytest.raises(LeRobotFormatError, match=r"episode 1: column 'frame_index' = 3 where 2 was expected"):
        _import(tmp_path / "ds", kind="demo", assume_success=True)


def test_cli_ingest_reports_added_skipped_versions_and_fails_cleanly(tmp_path):
    write_lerobot_dataset(tmp_path / "ds", LENGTHS)
    runner = CliRunner()
    args = [
        "ingest",
        "lerobot",
        str(tmp_path / "ds"),
        "--kind",
        "autonomous",
        "--store",
        str(tmp_path / "lance"),
    ]
    first = runner.invoke(app, [*args, "--success-column", "next.success", "--iteration", "2"])
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout.strip().splitlines()[-1])
    assert report["added"] == 5 and report["skipped"] == 0 and report["versions"]["episodes"] == 1
    second = runner.invoke(app, [*args, "--success-column", "next.success", "--iteration", "2"])
    assert json.loads(second.stdout.strip().splitlines()[-1]) == {
        "added": 0,
        "skipped": 5,
        "same_content": 0,
        "versions": report["versions"],
    }
    bad = runner.invoke(app, args)  # no success label
    assert bad.exit_code == 2 and "no success label" in bad.output
    # same ids, different labels (iteration differs): refused as a content conflict, nothing written
    conflict = runner.invoke(app, [*args, "--success-column", "next.success", "--iteration", "3"])
    assert conflict.exit_code == 2 and "different content" in conflict.output
    assert "dataset episode 0 (stored id " in conflict.output  # the dataset's index, not just our hash
    assert EpisodeStore(tmp_path / "lance").versions() == report["versions"]


def test_hub_repo_id_resolves_from_the_offline_cache(tmp_path):
    """A Hub repo id is fetched through huggingface_hub's cache; with HF_HUB_OFFLINE=1 no network is used."""
    cache = tmp_path / "hf-cache"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = cache / "datasets--acme--so100-pick" / "snapshots" / commit
    write_lerobot_dataset(tmp_path / "ds", LENGTHS)
    shutil.copytree(tmp_path / "ds", snapshot)
    refs = cache / "datasets--acme--so100-pick" / "refs"
    refs.mkdir(parents=True)
    (refs / "main").write_text(commit)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "HF_HOME": str(tmp_path / "hf")}
    command = [
        sys.executable,
        "-m",
        "pipelines.cli",
        "ingest",
        "lerobot",
        "acme/so100-pick",
        "--kind",
        "demo",
    ]
    command += ["--assume-success", "--store", str(tmp_path / "lance")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["added"] == 5
    stored = EpisodeStore(tmp_path / "lance").episodes().frame
    assert set(stored["source"].str.split("#").list.first()) == {"lerobot:acme/so100-pick"}
    missing = subprocess.run(
        [*command[:5], "acme/not-cached", *command[6:]], env=env, capture_output=True, text=True, timeout=120
    )
    assert missing.returncode == 2 and "acme/not-cached" in missing.stderr
