"""Two processes ingesting into one store at once: both land, nothing lost, nothing duplicated."""

from __future__ import annotations

import multiprocessing

import numpy as np
import polars as pl
from store_helpers import ingest_in_process

from recap_core.store import EpisodeStore


def test_two_processes_ingesting_at_once_both_land(tmp_path):
    uri = str(tmp_path / "lance")
    context = multiprocessing.get_context("spawn")
    # overlapping ranges: episodes 15..29 are offered by both processes at about the same time
    jobs = [(uri, 0, 30, 5, 7), (uri, 15, 30, 5, 7)]
    with context.Pool(2) as pool:
        added = pool.starmap(ingest_in_process, jobs)
    store = EpisodeStore(uri)
    episodes = store.episodes().frame
    assert episodes.height == 45 and episodes["episode_id"].n_unique() == 45
    assert len(added[0]) + len(added[1]) == 45  # every episode reported added exactly once
    assert set(added[0]).isdisjoint(added[1])
    steps = pl.from_arrow(store.dataset("steps").to_table(columns=["episode_id", "t"]))
    assert not steps.is_duplicated().any()
    loaded = store.load_steps()
    assert len(loaded) == int(episodes["length"].sum()) == steps.height
    np.testing.assert_array_equal(np.bincount(loaded.episode_index), loaded.episodes["length"].to_numpy())
