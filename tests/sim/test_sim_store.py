"""Collected episodes round-trip through the real Lance episode store."""

from __future__ import annotations

import numpy as np
from sim_helpers import ConstantChunkPolicy

from recap_core.sim import (
    SupervisorConfig,
    collect_demos,
    collect_rollouts,
    get_task,
    train_seeds,
    with_max_steps,
)
from recap_core.store import EpisodeStore


def test_demos_rollouts_and_interventions_round_trip(tmp_path):
    task = get_task("point-reach")
    demos = list(collect_demos(task, train_seeds(6)))
    supervisor = SupervisorConfig(share=0.5, window=10)
    rollouts = list(
        collect_rollouts(
            ConstantChunkPolicy([0.3, -0.2]),
            task,
            train_seeds(8, start=100),
            collected_by="policy:test@abc",
            iteration=1,
            supervisor=supervisor,
        )
    )
    kinds = {e.kind for e in rollouts}
    assert kinds == {"autonomous", "intervention"}
    store = EpisodeStore(tmp_path / "lance")
    result = store.add_episodes(demos + rollouts)
    assert len(result.added) == 14 and not result.skipped
    again = store.add_episodes(demos + rollouts)
    assert not again.added and len(again.skipped) == 14

    steps = store.load_steps(task="point-reach")
    frame = steps.episodes
    assert frame.height == 14
    by_id = {e.episode_id: e for e in demos + rollouts}
    for row, episode_id in enumerate(frame["episode_id"].to_list()):
        original = by_id[episode_id]
        mask = steps.episode_index == row
        np.testing.assert_allclose(steps.observations[mask], original.observations)
        np.testing.assert_allclose(steps.actions[mask], original.actions)
        np.testing.assert_array_equal(steps.is_correction[mask], original.is_correction)
        record = frame.row(row, named=True)
        assert record["kind"] == original.kind and record["success"] == original.success
        assert record["iteration"] == original.iteration and record["length"] == original.length
    stored = store.episodes(task="point-reach").frame
    collected_by = dict(zip(stored["episode_id"].to_list(), stored["collected_by"].to_list(), strict=True))
    assert {collected_by[e.episode_id] for e in demos} == {"operator:scripted-expert"}
    assert {collected_by[e.episode_id] for e in rollouts} == {"policy:test@abc"}


def test_metaworld_demos_round_trip(tmp_path):
    task = with_max_steps(get_task("reach-v3"), 120)
    demos = list(collect_demos(task, train_seeds(2)))
    store = EpisodeStore(tmp_path / "lance")
    assert len(store.add_episodes(demos).added) == 2
    steps = store.load_steps(task="reach-v3", kind="demo")
    assert steps.observations.shape == (sum(d.length for d in demos), 39)
    by_id = {d.episode_id: d for d in demos}
    stored_order = steps.episodes["episode_id"].to_list()
    np.testing.assert_allclose(steps.actions, np.concatenate([by_id[i].actions for i in stored_order]))
    np.testing.assert_allclose(
        steps.observations, np.concatenate([by_id[i].observations for i in stored_order])
    )
