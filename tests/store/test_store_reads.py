"""Reads: filters with lineage, pinned versions, StepArrays layout, chunks at episode ends, derived tables."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from store_helpers import frame_png, make_episode

from recap_core.episode import Episode
from recap_core.loop.labels import partition_filter
from recap_core.steps import action_chunks
from recap_core.store import EpisodeStore


@pytest.fixture
def store(tmp_path):
    store = EpisodeStore(tmp_path / "lance")
    store.add_episodes([make_episode(i, length=5 + i, kind="demo") for i in range(3)])
    store.add_episodes([make_episode(i, length=5 + i, kind="autonomous", iteration=1) for i in range(3, 6)])
    store.add_episodes([make_episode(i, length=9, kind="intervention", iteration=2) for i in range(6, 8)])
    return store


def test_episode_filters_and_lineage(store):
    everything = store.episodes()
    assert everything.frame.height == 8 and everything.versions == {"episodes": 3}
    assert store.episodes(kind="autonomous").frame["iteration"].unique().to_list() == [1]
    assert store.episodes(iteration=2).frame.height == 2
    assert store.episodes(max_iteration=1).frame.height == 6
    successes = store.episodes(success=True).frame
    assert successes.height == 4 and successes["success"].all()
    assert store.episodes(task="nope").frame.height == 0


def test_pinned_versions_read_the_past(store):
    pinned = store.versions()
    store.add_episodes([make_episode(50, kind="demo")])
    assert store.episodes(versions=pinned).frame.height == 8
    assert store.episodes().frame.height == 9
    old = store.load_steps(versions=pinned)
    assert old.episodes.height == 8 and len(old) == int(old.episodes["length"].sum())
    assert len(store.load_steps()) == len(old) + 12


def test_load_steps_is_contiguous_and_ordered(store):
    steps = store.load_steps()
    assert np.all(np.diff(steps.episode_index) >= 0)
    lengths = steps.episodes["length"].to_numpy()
    np.testing.assert_array_equal(np.bincount(steps.episode_index), lengths)
    for row in range(steps.episodes.height):
        np.testing.assert_array_equal(steps.t[steps.episode_index == row], np.arange(lengths[row]))
    intervention = steps.per_step("kind") == "intervention"
    assert steps.is_correction[intervention].any() and not steps.is_correction[~intervention].any()
    demos = store.load_steps(kind="demo")
    assert demos.episodes["kind"].to_list() == ["demo"] * 3 and len(demos) == 5 + 6 + 7


def test_load_steps_matches_source_arrays(store):
    steps = store.load_steps(iteration=1)
    for row, episode_id in enumerate(steps.episodes["episode_id"]):
        index = next(i for i in range(3, 6) if make_episode(i).episode_id == episode_id)
        source = make_episode(index, length=5 + index, kind="autonomous", iteration=1)
        np.testing.assert_array_equal(steps.actions[steps.episode_index == row], source.actions)
        np.testing.assert_array_equal(steps.observations[steps.episode_index == row], source.observations)


def test_action_chunks_at_episode_ends_never_cross_into_the_next_episode(store):
    steps = store.load_steps(kind="demo")
    end = steps.episode_end
    last_of_first = int(steps.episodes["length"][0]) - 1
    chunks, mask = action_chunks(steps.actions, end, np.array([last_of_first, last_of_first - 2, 0]), 4)
    assert mask[0].tolist() == [True, False, False, False]
    assert mask[1].tolist() == [True, True, True, False]
    assert mask[2].all()
    np.testing.assert_array_equal(chunks[0], np.repeat(steps.actions[last_of_first][None], 4, axis=0))
    np.testing.assert_array_equal(chunks[1, :3], steps.actions[last_of_first - 2 : last_of_first + 1])
    np.testing.assert_array_equal(chunks[1, 3], steps.actions[last_of_first])
    assert not np.array_equal(chunks[0, 1], steps.actions[last_of_first + 1])


def test_episode_steps_in_order_and_lazy_frames(store):
    episode_id = make_episode(7).episode_id
    frame = store.episode_steps(episode_id)
    assert frame["t"].to_list() == list(range(9))
    assert frame["is_correction"].to_list() == [t % 5 == 0 for t in range(9)]
    with pytest.raises(KeyError, match="not in the store"):
        store.episode_steps("missing")
    lazy = store.lazy("steps").group_by("episode_id").agg(pl.len()).collect()
    assert lazy.height == 8 and lazy["len"].sum() == store.episodes().frame["length"].sum()
    assert store.lazy("episodes").filter(pl.col("kind") == "demo").collect().height == 3


def test_images_are_stored_as_lazily_read_blobs(tmp_path):
    store = EpisodeStore(tmp_path / "lance")
    base = make_episode(0, length=3)
    frames = [frame_png(t) for t in range(3)]
    with_images = Episode(**{**base.__dict__, "images": {"wrist": frames}})
    store.add_episodes([with_images])
    assert "image_wrist" in store.dataset("steps").schema.names
    assert store.episode_images(base.episode_id, "wrist") == frames
    # an episode without that camera still lands (null blobs); a new camera is refused by name
    store.add_episodes([make_episode(1, length=3)])
    assert store.episodes().frame.height == 2
    other = Episode(**{**make_episode(2, length=3).__dict__, "images": {"top": frames}})
    with pytest.raises(ValueError, match="image_top"):
        store.add_episodes([other])


def test_derived_tables_upsert_idempotently(store):
    rows = pa.table({"episode_id": ["a", "a", "b"], "t": [0, 1, 0], "value": [-0.5, -0.4, -0.9]})
    v1 = store.write_derived("values_reach_it0", rows, ["episode_id", "t"])
    v2 = store.write_derived("values_reach_it0", rows, ["episode_id", "t"])
    assert store.read_derived("values_reach_it0").height == 3 and v2 >= v1
    update = pa.table({"episode_id": ["a", "c"], "t": [1, 0], "value": [-0.1, -0.7]})
    store.write_derived("values_reach_it0", update, ["episode_id", "t"])
    table = store.read_derived("values_reach_it0").sort("episode_id", "t")
    assert table["value"].to_list() == [-0.5, -0.1, -0.9, -0.7]
    assert store.read_derived("values_reach_it0", filter="episode_id = 'a'").height == 2
    assert store.read_derived("values_reach_it0", version=v1).height == 3
    assert "values_reach_it0" in store.versions()
    with pytest.raises(ValueError, match="more than once"):
        store.write_derived("values_reach_it0", pa.concat_tables([rows, rows]), ["episode_id", "t"])
    with pytest.raises(ValueError, match="lower_snake_case"):
        store.write_derived("steps", rows, ["episode_id"])


def test_a_derived_table_gains_columns_a_newer_stage_writes(store):
    keys = ["task", "iteration"]
    store.write_derived("thresholds", pa.table({"task": ["a"], "iteration": [1], "threshold": [0.1]}), keys)
    newer = pa.table(
        {"task": ["a", "b"], "iteration": [1, 1], "threshold": [0.2, 0.3], "population": ["x", "y"]}
    )
    store.write_derived("thresholds", newer, keys)
    rows = store.read_derived("thresholds").sort("task")
    assert rows["threshold"].to_list() == [0.2, 0.3]
    assert rows["population"].to_list() == ["x", "y"]


def test_one_partition_of_a_derived_table_is_read_even_for_a_task_name_with_a_quote(store):
    rows = pa.table(
        {
            "task": ["o'clock-v3", "o'clock-v3", "reach-v3"],
            "iteration": pa.array([1, 2, 1], pa.int32()),
            "episode_id": ["a", "a", "b"],
            "t": pa.array([0, 0, 0], pa.int32()),
        }
    )
    store.write_derived("partitioned", rows, ["task", "iteration", "episode_id", "t"])
    part = store.read_derived("partitioned", filter=partition_filter("o'clock-v3", 1))
    assert part.select("task", "iteration", "episode_id").rows() == [("o'clock-v3", 1, "a")]
