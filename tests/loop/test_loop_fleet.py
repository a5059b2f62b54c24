"""The fleet's drop folder through the experience stage: ingested once, into the iteration that found it."""

from __future__ import annotations

import json

import pytest
from store_helpers import write_lerobot_dataset

from recap_core.checkpoints.layout import CheckpointLayout
from recap_core.loop.collection import collect_iteration_experience
from recap_core.loop.context import RunContext
from recap_core.loop.fleet import pending_datasets
from recap_core.loop.settings import preset
from recap_core.store import EpisodeStore
from recap_core.store.lerobot import LeRobotFormatError
from schemas.derived import FLEET_IMPORTS


def _context(store: EpisodeStore, tmp_path) -> RunContext:
    return RunContext(store, preset("tiny"), CheckpointLayout(tmp_path / "ckpt"), str(tmp_path / "ledger"))


def _drop(folder, name: str, task: str, lengths: list[int]) -> None:
    write_lerobot_dataset(folder / name, lengths)
    (folder / name / "recap_import.json").write_text(
        json.dumps(
            {
                "task": task,
                "kind": "intervention",
                "success_column": "next.success",
                "intervention_column": "is_intervention",
            }
        )
    )


def test_dropped_datasets_are_ingested_once_into_the_iteration_that_found_them(tmp_path):
    store = EpisodeStore(tmp_path / "lance")
    drop = tmp_path / "drop"
    _drop(drop, "station-3-monday", "drawer-station-3", [10, 12, 8])

    first = collect_iteration_experience(_context(store, tmp_path), "drawer-station-3", 2, str(drop))
    assert first.added == 3 and first.extra["fleet_datasets"] == 1
    stored = store.episodes(task="drawer-station-3").frame
    assert stored["iteration"].to_list() == [2, 2, 2]
    assert stored["kind"].unique().to_list() == ["intervention"]
    steps = store.load_steps(task="drawer-station-3")
    assert steps.is_correction.any(), "per-frame intervention flags become correction steps"
    assert store.read_derived(FLEET_IMPORTS)["iteration"].to_list() == [2]

    # A later iteration neither re-imports it nor conflicts with it.
    again = collect_iteration_experience(_context(store, tmp_path), "drawer-station-3", 3, str(drop))
    assert again.added == 0 and again.extra["fleet_datasets"] == 0
    assert store.episodes(task="drawer-station-3").frame.height == 3
    assert pending_datasets(store, drop) == []


def test_a_dataset_for_another_task_waits_for_its_own_task(tmp_path):
    store = EpisodeStore(tmp_path / "lance")
    drop = tmp_path / "drop"
    _drop(drop, "a", "task-a", [6])
    _drop(drop, "b", "task-b", [7])
    collect_iteration_experience(_context(store, tmp_path), "task-a", 0, str(drop))
    assert [d.name for d in pending_datasets(store, drop)] == ["b"]


def test_import_options_must_name_task_and_kind(tmp_path):
    drop = tmp_path / "drop"
    write_lerobot_dataset(drop / "bad", [5])
    (drop / "bad" / "recap_import.json").write_text(json.dumps({"kind": "demo", "colour": "red"}))
    with pytest.raises(LeRobotFormatError, match=r"bad: recap_import\.json needs 'task' and 'kind'"):
        pending_datasets(EpisodeStore(tmp_path / "lance"), drop)


def test_an_import_interrupted_before_its_record_is_finished_not_refused(tmp_path):
    from recap_core.loop.fleet import dropped_datasets
    from recap_core.store.lerobot import LeRobotOptions, iter_episodes, open_dataset

    store = EpisodeStore(tmp_path / "lance")
    drop = tmp_path / "drop"
    _drop(drop, "tuesday", "drawer-station-3", [9, 11])
    dataset = dropped_datasets(drop)[0]
    # The crash: episodes landed as iteration 2, the fleet_imports record did not.
    options = LeRobotOptions(iteration=2, **dataset.options)
    store.add_episodes(iter_episodes(open_dataset(str(dataset.path)), options))

    later = collect_iteration_experience(_context(store, tmp_path), "drawer-station-3", 3, str(drop))
    assert later.added == 0
    assert store.read_derived(FLEET_IMPORTS)["iteration"].to_list() == [2]
    assert store.episodes(task="drawer-station-3").frame["iteration"].to_list() == [2, 2]
