"""The fleet's drop folder through the experience stage: ingested once (per task), into the iteration that
found it; a dataset still being written (a hidden staging folder) is never picked up."""

from __future__ import annotations

import json

import numpy as np
import pytest
from store_helpers import write_lerobot_dataset

from recap_core.checkpoints.layout import CheckpointLayout
from recap_core.lerobot_v3.episode import RecordedEpisode
from recap_core.lerobot_v3.staging import staged_folder
from recap_core.lerobot_v3.writer import DatasetWriter, write_dataset
from recap_core.loop.collection import collect_iteration_experience
from recap_core.loop.context import RunContext
from recap_core.loop.fleet import dropped_datasets, ingest_pending, pending_datasets
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


def _recorded(task: str, kind: str, length: int, seed: int) -> RecordedEpisode:
    rng = np.random.default_rng(seed)
    return RecordedEpisode(
        state=rng.normal(size=(length, 6)),  # the sizes of write_lerobot_dataset
        action=rng.uniform(-1, 1, size=(length, 2)),
        is_intervention=(np.arange(length) >= 2) if kind == "intervention" else None,
        prompt=f"do {task}",
        task=task,
        kind=kind,
        success=seed % 2 == 0,
        collected_by="policy:iteration-000@0123456789ab",
    )


def test_a_dataset_still_being_written_is_never_picked_up(tmp_path):
    store = EpisodeStore(tmp_path / "lance")
    drop = tmp_path / "drop"
    _drop(drop, ".station-3.partial-0a1b2c3d", "drawer-station-3", [6, 7])  # complete, but still hidden
    (drop / ".trash").mkdir()
    with staged_folder(drop / "station-4") as staging:  # the writers' own staging, mid-write
        writer = DatasetWriter(staging, fps=10)
        writer.add(_recorded("drawer-station-3", "autonomous", 5, 0))
        writer.finish()
        assert (staging / "meta" / "info.json").is_file() and staging.name.startswith(".station-4.partial-")
        assert dropped_datasets(drop) == [] and pending_datasets(store, drop) == []
        assert ingest_pending(store, drop, "drawer-station-3", 1) == {}
    assert [d.name for d in dropped_datasets(drop)] == ["station-4"]
    (drop / ".station-3.partial-0a1b2c3d").rename(drop / "station-3")
    assert ingest_pending(store, drop, "drawer-station-3", 1) == {"station-3": 2, "station-4": 1}
    assert store.episodes(task="drawer-station-3").frame.height == 3


def test_a_dataset_of_two_tasks_and_two_kinds_is_ingested_once_per_task(tmp_path):
    store = EpisodeStore(tmp_path / "lance")
    drop = tmp_path / "drop"
    episodes = [
        _recorded("task-a", "autonomous", 6, 0),
        _recorded("task-b", "intervention", 7, 1),
        _recorded("task-a", "intervention", 5, 2),
    ]
    write_dataset(drop / "mixed", episodes, fps=10)
    (dataset,) = pending_datasets(store, drop)
    assert dataset.tasks == ("task-a", "task-b") and set(dataset.options) >= {"task_column", "kind_column"}

    assert ingest_pending(store, drop, "task-a", 1) == {"mixed": 2}
    stored = store.episodes(task="task-a").frame.sort("length", descending=True)
    assert stored["kind"].to_list() == ["autonomous", "intervention"]
    assert stored["success"].to_list() == [True, True]
    assert set(stored["collected_by"]) == {"policy:iteration-000@0123456789ab"}
    steps = store.load_steps(task="task-a")
    assert int(steps.is_correction.sum()) == 3, "steps 2..4 of the intervention episode"
    assert [d.name for d in pending_datasets(store, drop, "task-a")] == []
    assert [d.name for d in pending_datasets(store, drop, "task-b")] == ["mixed"], "task-b still waits"

    assert ingest_pending(store, drop, "task-b", 2) == {"mixed": 1}
    assert store.episodes(task="task-b").frame["kind"].to_list() == ["intervention"]
    imports = store.read_derived(FLEET_IMPORTS).sort("task")
    assert imports.select("dataset", "task", "iteration", "episodes").rows() == [
        ("mixed/task-a", "task-a", 1, 2),
        ("mixed/task-b", "task-b", 2, 1),
    ]
    assert pending_datasets(store, drop) == []
