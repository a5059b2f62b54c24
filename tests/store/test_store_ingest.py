"""Ingest rules: idempotent re-ingest, atomic rejection of bad batches, commit point, real Meta-World data."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from store_helpers import make_episode, metaworld_episode

from recap_core.store import EpisodeStore, EpisodeValidationError
from recap_core.store.batch import build_batch, validate_step_table


def test_reingest_is_skipped_and_writes_nothing(tmp_path):
    store = EpisodeStore(tmp_path / "lance")
    first = store.add_episodes([make_episode(i) for i in range(4)])
    assert len(first.added) == 4 and first.skipped == []
    assert first.frames_added == 48
    again = store.add_episodes([make_episode(i) for i in range(6)])
    assert again.skipped == [make_episode(i).episode_id for i in range(4)]
    assert len(again.added) == 2
    before = store.versions()
    third = store.add_episodes([make_episode(i) for i in range(6)])
    assert third.added == [] and len(third.skipped) == 6
    assert store.versions() == before == third.versions
    frame = store.episodes().frame
    assert frame.height == 6 and frame["episode_id"].n_unique() == 6
    assert store.dataset("steps").count_rows() == 6 * 12


def test_round_trip_of_real_metaworld_episodes(tmp_path):
    episodes = [metaworld_episode(seed) for seed in (0, 1)]
    store = EpisodeStore(tmp_path / "lance")
    store.add_episodes(episodes)
    steps = store.load_steps(task="reach-v3")
    by_id = {e.episode_id: e for e in episodes}
    assert steps.observations.shape == (80, 39) and steps.actions.shape == (80, 4)
    for row, episode_id in enumerate(steps.episodes["episode_id"]):
        mine = steps.episode_index == row
        np.testing.assert_array_equal(steps.observations[mine], by_id[episode_id].observations)
        np.testing.assert_array_equal(steps.actions[mine], by_id[episode_id].actions)
        np.testing.assert_array_equal(steps.t[mine], np.arange(40))
    stored = store.episodes().frame.sort("episode_id")
    assert stored["robot"].to_list() == ["metaworld-sawyer"] * 2
    assert stored["obs_dim"].to_list() == [39, 39]


def _nan(e):
    e.observations[3, 7] = np.nan


def _inf(e):
    e.actions[5, 1] = np.inf


def _missing_success(e):
    e.success = None


def _unknown_kind(e):
    e.kind = "teleop"


def _empty(e):
    e.observations = np.zeros((0, 39), np.float32)
    e.actions = np.zeros((0, 4), np.float32)
    e.is_correction = np.zeros(0, bool)


def _ragged(e):
    e.observations = e.observations[:-1]


@pytest.mark.parametrize(
    ("spoil", "column", "value"),
    [
        (_nan, "observation", "nan"),
        (_inf, "action", "inf"),
        (_missing_success, "success", "None"),
        (_unknown_kind, "kind", "'teleop'"),
        (_empty, "length", "0"),
        (_ragged, "observation", "11"),
    ],
)
def test_bad_batch_is_refused_whole_and_names_episode_column_value(tmp_path, spoil, column, value):
    store = EpisodeStore(tmp_path / "lance")
    store.add_episodes([make_episode(0)])
    before = store.versions()
    bad = make_episode(99)
    spoil(bad)
    with pytest.raises(EpisodeValidationError) as caught:
        store.add_episodes([make_episode(1), bad, make_episode(2)])
    message = str(caught.value)
    assert bad.episode_id in message and f"column {column!r}" in message and value in message
    assert any(p.episode_id == bad.episode_id and p.column == column for p in caught.value.problems)
    assert store.versions() == before
    assert store.episodes().frame.height == 1


def test_existing_id_with_different_content_is_refused(tmp_path):
    store = EpisodeStore(tmp_path / "lance")
    store.add_episodes([make_episode(0)])
    before = store.versions()
    changed = make_episode(0)
    changed.actions[0, 0] += 0.5
    with pytest.raises(EpisodeValidationError, match="different content") as caught:
        store.add_episodes([make_episode(1), changed])
    assert caught.value.problems[0].episode_id == changed.episode_id
    assert caught.value.problems[0].column == "content_hash"
    assert store.versions() == before


def test_vector_size_must_match_what_the_task_has_stored(tmp_path):
    store = EpisodeStore(tmp_path / "lance")
    store.add_episodes([make_episode(0, obs_dim=39)])
    before = store.versions()
    with pytest.raises(EpisodeValidationError, match="stored with observation size 39") as caught:
        store.add_episodes([make_episode(1, obs_dim=40)])
    assert caught.value.problems[0].value == "size 40"
    assert store.versions() == before
    # another task may have its own sizes
    store.add_episodes([make_episode(2, task="other-task", obs_dim=12, action_dim=3)])
    with pytest.raises(ValueError, match="mix vector sizes"):
        store.load_steps()
    assert store.load_steps(task="other-task").observations.shape == (12, 12)


def test_within_batch_sizes_must_agree_per_task(tmp_path):
    with pytest.raises(EpisodeValidationError, match="action size 4 elsewhere in this batch"):
        build_batch([make_episode(0), make_episode(1, action_dim=5)])


def test_t_must_count_from_zero_within_each_episode():
    steps = build_batch([make_episode(0, length=4)]).steps
    t = steps.column("t").to_numpy().copy()
    t[2] = 7
    broken = steps.set_column(steps.schema.get_field_index("t"), "t", pa.array(t, pa.int32()))
    problems = validate_step_table(broken)
    assert [(p.column, p.value) for p in problems] == [("t", 7)]
    assert problems[0].episode_id == make_episode(0).episode_id


def test_steps_without_an_episode_row_are_invisible_and_a_retry_completes(tmp_path):
    """A crash between the steps write and the episodes write (the commit point) leaves no visible trace."""
    store = EpisodeStore(tmp_path / "lance")
    store.add_episodes([make_episode(0)])
    crashed = build_batch([make_episode(1), make_episode(2)])
    store._upsert("steps", crashed.steps, ["episode_id", "t"], update_matched=True)  # then "crash"
    assert store.dataset("steps").count_rows() == 36
    assert store.episodes().frame.height == 1
    assert len(store.load_steps()) == 12
    assert store.lazy("steps").collect().height == 12
    retry = store.add_episodes([make_episode(1), make_episode(2)])
    assert len(retry.added) == 2
    assert store.dataset("steps").count_rows() == 36  # the orphaned steps were reused, not duplicated
    assert len(store.load_steps()) == 36
