"""The streaming training reader on real Lance tables: same steps as the in-memory path, whole episodes
per shard under the budget, disjoint ranks, reproducible shuffles, and bounded resident memory."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from store_helpers import make_episode

from recap_core.steps import action_chunks
from recap_core.store import EpisodeStore
from recap_core.store.streaming import COPIES_AT_PEAK, StreamingStepReader
from recap_core.training.sources import in_memory_data, streaming_data

EPISODES = 60


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = EpisodeStore(tmp_path_factory.mktemp("streaming") / "lance")
    episodes = [make_episode(i, length=20 + (7 * i) % 31) for i in range(EPISODES)]
    for start in range(0, EPISODES, 13):  # several ingest batches: several fragments
        store.add_episodes(episodes[start : start + 13])
    return store


def _reader(store: EpisodeStore, budget_steps: int) -> StreamingStepReader:
    versions = store.versions()
    selection = store.episodes(versions=versions).frame
    bytes_per_step = 4 * (39 + 4) + 17
    return StreamingStepReader(store, selection, versions, COPIES_AT_PEAK * bytes_per_step * budget_steps)


def _identities(steps, index) -> list[tuple[str, int]]:
    ids = steps.per_step("episode_id")
    return [(ids[i], int(steps.t[i])) for i in index]


def test_one_shard_holding_everything_is_the_in_memory_selection(store):
    reader = _reader(store, budget_steps=10**6)
    everything = reader.read(np.arange(reader.episodes.height))
    loaded = store.load_steps(versions=store.versions())
    assert everything.episodes["episode_id"].to_list() == loaded.episodes["episode_id"].to_list()
    np.testing.assert_array_equal(everything.observations, loaded.observations)
    np.testing.assert_array_equal(everything.actions, loaded.actions)
    np.testing.assert_array_equal(everything.t, loaded.t)
    np.testing.assert_array_equal(everything.episode_index, loaded.episode_index)


def test_shards_hold_whole_episodes_within_the_budget_and_cover_each_once_per_epoch(store):
    reader = _reader(store, budget_steps=300)
    data = streaming_data(reader, None, val_fraction=0.0, seed=3)
    source = data.train[0]
    loaded = store.load_steps(versions=store.versions())
    by_id = {eid: i for i, eid in enumerate(loaded.episodes["episode_id"].to_list())}
    orders = []
    for epoch in (0, 1):
        seen = []
        for shard in source.shards(epoch):
            assert len(shard.steps) <= reader.steps_per_shard
            assert reader.shard_bytes(len(shard.steps)) <= reader.budget_bytes
            for row, episode_id in enumerate(shard.steps.episodes["episode_id"].to_list()):
                mine = shard.steps.episode_index == row
                theirs = loaded.episode_index == by_id[episode_id]
                np.testing.assert_array_equal(shard.steps.observations[mine], loaded.observations[theirs])
                np.testing.assert_array_equal(shard.steps.t[mine], np.arange(mine.sum()))
            # an action chunk at an episode's last step is padding after it, never the next episode
            last = shard.steps.episode_end - 1
            chunks, mask = action_chunks(shard.steps.actions, shard.steps.episode_end, last, 5)
            assert not mask[:, 1:].any()
            np.testing.assert_array_equal(chunks[:, 4], shard.steps.actions[last])
            seen += shard.steps.episodes["episode_id"].to_list()
        assert sorted(seen) == sorted(by_id)
        orders.append(seen)
    assert orders[0] != orders[1], "each epoch shuffles episodes across shards"
    again = [s.steps.episodes["episode_id"].to_list() for s in data.train[0].shards(0)]
    assert [eid for shard in again for eid in shard] == orders[0], (
        "the same seed and epoch give the same shards"
    )


def test_ranks_get_disjoint_episodes_that_together_cover_the_data(store):
    reader = _reader(store, budget_steps=250)
    episodes_of = []
    for rank in (0, 1):
        data = streaming_data(reader, None, val_fraction=0.1, seed=0, world_size=2, rank=rank)
        ids = set()
        for source in (*data.train, *data.val):
            for shard in source.shards(0):
                ids |= set(shard.steps.episodes["episode_id"].to_list())
        episodes_of.append(ids)
    assert not episodes_of[0] & episodes_of[1]
    assert episodes_of[0] | episodes_of[1] == set(reader.episodes["episode_id"].to_list())
    sizes = [
        sum(reader.lengths[reader.episodes["episode_id"].is_in(list(ids)).to_numpy()]) for ids in episodes_of
    ]
    assert abs(sizes[0] - sizes[1]) <= reader.lengths.max(), "ranks are balanced by steps"


def test_streaming_and_in_memory_draw_the_same_samples_when_one_shard_holds_the_data(store):
    loaded = store.load_steps(versions=store.versions())
    memory = in_memory_data(loaded, {}, val_fraction=0.2, seed=5).train[0]
    streamed = streaming_data(_reader(store, budget_steps=10**6), None, val_fraction=0.2, seed=5).train[0]
    draws = []
    for source in (memory, streamed):
        rng = np.random.default_rng(11)
        draws.append(
            [
                _identities(shard.steps, idx)
                for epoch in (0, 1)
                for shard, idx in source.batches(epoch, rng, 32, None)
            ]
        )
    assert draws[0] == draws[1]


def test_an_episode_longer_than_the_budget_is_refused_naming_it(store):
    with pytest.raises(ValueError, match=r"episode .* has 50 steps, more than a shard"):
        _reader(store, budget_steps=40)


MEMORY_PROBE = r"""
import json, sys
import numpy as np
from recap_core.store import EpisodeStore
from recap_core.store.streaming import StreamingStepReader
from recap_core.training.sources import streaming_data


def resident_peak_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024

uri, mode, budget = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = EpisodeStore(uri)
versions = store.versions()
selection = store.episodes(versions=versions).frame
if mode == "streaming":
    reader = StreamingStepReader(store, selection, versions, budget)
    source = streaming_data(reader, None, 0.0, 0).train[0]
open("/proc/self/clear_refs", "w").write("5")  # reset the peak: count only what the read adds
before = resident_peak_mib()
checksum = 0.0
if mode == "streaming":
    for shard in source.shards(0):
        checksum += float(shard.steps.observations[:, 0].sum(dtype=np.float64))
        del shard
else:
    steps = store.load_steps(versions=versions)
    checksum += float(steps.observations[:, 0].sum(dtype=np.float64))
print(json.dumps({"added_mib": resident_peak_mib() - before, "checksum": checksum}))
"""


def test_streaming_memory_stays_under_its_budget_on_a_dataset_several_times_larger(tmp_path):
    store = EpisodeStore(tmp_path / "lance")
    episodes = [make_episode(i, length=200, seed=1) for i in range(2_000)]  # 400,000 steps, 69 MiB of floats
    for start in range(0, len(episodes), 250):
        store.add_episodes(episodes[start : start + 250])
    budget = 16 * 2**20

    def probe(mode: str) -> dict:
        out = subprocess.run(
            [sys.executable, "-c", MEMORY_PROBE, str(store.uri), mode, str(budget)],
            capture_output=True, text=True, check=True, timeout=300,
        )  # fmt: skip
        return json.loads(out.stdout.strip().splitlines()[-1])

    streamed, in_memory = probe("streaming"), probe("memory")
    assert streamed["checksum"] == pytest.approx(in_memory["checksum"], rel=1e-6)
    assert in_memory["added_mib"] > 4 * budget / 2**20, in_memory  # the data is several budgets large
    assert streamed["added_mib"] < budget / 2**20, (streamed, in_memory)
