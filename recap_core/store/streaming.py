"""Reading the steps table shard by shard, with memory bounded by a budget instead of the dataset's size.

``EpisodeStore.load_steps`` puts every selected step in memory, which is the fastest path for the
datasets of one machine but does not scale to a fleet's millions of frames, nor to N distributed ranks
that would each hold everything. This reader keeps only an index of where each episode's steps lie in
the table (a few numbers per episode) and reads whole episodes, one shard at a time, with Lance's
``take`` of those row positions. A shard is a ``StepArrays`` like the in-memory one, so everything that
works on steps (action chunks that never cross an episode's end, returns, labels) works on a shard.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import lance
import numpy as np
import polars as pl
import pyarrow
import pyarrow.compute as pc

from recap_core.steps import StepArrays
from recap_core.store.episode_store import STEPS, EpisodeStore, _matrix
from recap_core.store.frame_cache import FrameCache
from recap_core.store.step_images import load_step_images, with_step_images

# Resident memory at the peak of reading a shard, per byte of its steps' columns: Lance's decode and
# I/O buffers for the taken rows, the Arrow result and its numpy views. Measured 7-10x with pylance 14,
# and once 12.6x (16.7 MiB added against a 16 MiB budget at 12, with the test suite run twice at once;
# tests/store/test_store_streaming.py checks the budget holds); the shard size is derived from it.
COPIES_AT_PEAK = 14
SHARDS_IN_MEMORY = 2
# Decoded frames are held once per shard (uint8), plus their encoded bytes while a shard is decoded.
IMAGE_COPIES_AT_PEAK = 2
# Blocks per shard: the unit of shuffling is a shard's 1 / BLOCKS_PER_SHARD, so one shard mixes this
# many places of the table; contiguous ranges this long or longer are scanned instead of taken.
BLOCKS_PER_SHARD = 8
SCAN_MIN_ROWS = 1024
STEP_COLUMNS = ["observation", "action", "is_correction"]
_INDEX_BATCH_ROWS = 65_536


@dataclass(frozen=True)
class StepRowIndex:
    """Where the steps of each selected episode lie in the steps table, as runs of row positions.

    Run ``r`` covers table rows ``start[r] .. start[r] + length[r] - 1``, which hold t = ``t0[r]`` ..
    of episode row ``episode[r]``. Runs are sorted by (episode, t0); a cleanly ingested episode is one
    run. The index grows with the number of episodes, not of steps.
    """

    episode: np.ndarray
    start: np.ndarray
    t0: np.ndarray
    length: np.ndarray

    @classmethod
    def build(cls, dataset: lance.LanceDataset, episode_ids: list[str], lengths: np.ndarray) -> StepRowIndex:
        """One streamed pass over (episode_id, t); steps at t >= the episode's committed length are
        leftovers of a crashed, differently sized attempt and are skipped, as ``load_steps`` does."""
        ids = pyarrow.array(episode_ids, type=pyarrow.string())
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        position = 0
        scanner = dataset.scanner(
            columns=["episode_id", "t"], batch_size=_INDEX_BATCH_ROWS, scan_in_order=True
        )
        for batch in scanner.to_batches():
            n = batch.num_rows
            found = pc.index_in(batch.column("episode_id"), value_set=ids)
            episode = pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)
            t = batch.column("t").to_numpy().astype(np.int64)
            rows = np.arange(position, position + n, dtype=np.int64)
            position += n
            keep = episode >= 0
            keep[keep] = t[keep] < lengths[episode[keep]]
            episode, t, rows = episode[keep], t[keep], rows[keep]
            if len(rows) == 0:
                continue
            new_run = np.ones(len(rows), dtype=bool)
            new_run[1:] = (episode[1:] != episode[:-1]) | (t[1:] != t[:-1] + 1) | (rows[1:] != rows[:-1] + 1)
            starts = np.flatnonzero(new_run)
            run_length = np.diff(np.append(starts, len(rows)))
            parts.append((episode[starts], rows[starts], t[starts], run_length))
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return cls(empty, empty, empty, empty)
        episode, start, t0, length = (np.concatenate(column) for column in zip(*parts, strict=True))
        # runs cut by a batch boundary continue in the next batch: join them
        joins = np.zeros(len(start), dtype=bool)
        joins[1:] = (
            (episode[1:] == episode[:-1])
            & (t0[1:] == t0[:-1] + length[:-1])
            & (start[1:] == start[:-1] + length[:-1])
        )
        run_id = np.cumsum(~joins) - 1
        keep = np.flatnonzero(~joins)
        length = np.bincount(run_id, weights=length).astype(np.int64)
        episode, start, t0 = episode[keep], start[keep], t0[keep]
        order = np.lexsort((t0, episode))
        return cls(episode[order], start[order], t0[order], length[order])

    def steps_per_episode(self, n_episodes: int) -> np.ndarray:
        return np.bincount(self.episode, weights=self.length, minlength=n_episodes).astype(np.int64)

    def first_row(self, n_episodes: int) -> np.ndarray:
        """Table position of each episode's first stored step (stored order, as ``load_steps`` keeps)."""
        first = np.full(n_episodes, np.iinfo(np.int64).max)
        np.minimum.at(first, self.episode, self.start)
        return first

    def positions(self, episode_rows: np.ndarray) -> np.ndarray:
        """Table positions of the steps of ``episode_rows``, episode after episode, each in t order."""
        bounds = np.searchsorted(self.episode, [episode_rows, episode_rows + 1])
        runs = (
            np.concatenate([np.arange(lo, hi) for lo, hi in zip(*bounds, strict=True)])
            if len(episode_rows)
            else np.zeros(0, dtype=np.int64)
        )
        lengths = self.length[runs]
        offsets = np.repeat(self.start[runs] - np.cumsum(lengths) + lengths, lengths)
        return offsets + np.arange(int(lengths.sum()), dtype=np.int64)


class StreamingStepReader:
    """Whole episodes of one selection, read as ``StepArrays`` shards that fit a memory budget.

    ``episodes`` lists the selection in stored order (the order ``load_steps`` returns), so a shard that
    holds every episode is exactly the in-memory ``StepArrays``. ``cameras``: each shard also carries
    these cameras' frames, decoded once per shard (``image_size`` pixels square, counted in the budget),
    or read from ``frame_cache`` where an earlier epoch decoded them.
    """

    def __init__(
        self,
        store: EpisodeStore,
        episodes: pl.DataFrame,
        versions: Mapping[str, int],
        budget_bytes: int,
        cameras: Sequence[str] = (),
        image_size: int = 0,
        frame_cache: FrameCache | None = None,
    ) -> None:
        self.store = store
        self.frame_cache = frame_cache  # decoded frames of earlier epochs (recap_core/store/frame_cache.py)
        self.cameras = tuple(cameras)
        self.image_size = int(image_size)
        self.versions = dict(versions)
        self.budget_bytes = int(budget_bytes)
        opened = store._pinned(versions, STEPS)
        if STEPS not in opened or episodes.is_empty():
            raise ValueError(f"no steps to stream from {store.uri}: the selection holds no episodes")
        self.dataset = opened[STEPS]
        dims = episodes.select("obs_dim", "action_dim").unique()
        if dims.height > 1:
            raise ValueError("selected episodes mix vector sizes; one stream holds one size: select one task")
        self.obs_dim, self.action_dim = int(dims["obs_dim"][0]), int(dims["action_dim"][0])
        lengths = episodes["length"].to_numpy().astype(np.int64)
        index = StepRowIndex.build(self.dataset, episodes["episode_id"].to_list(), lengths)
        stored = index.steps_per_episode(episodes.height)
        if not np.array_equal(stored, lengths):
            bad = int(np.flatnonzero(stored != lengths)[0])
            raise RuntimeError(
                f"steps table at version {self.dataset.version} holds {stored[bad]} steps for episode "
                f"{episodes['episode_id'][bad]!r}, its episode row says {lengths[bad]}"
            )
        order = np.argsort(index.first_row(episodes.height), kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        self.episodes = episodes[order.tolist()]
        self.lengths = lengths[order]
        self._index = _sorted_runs(StepRowIndex(rank[index.episode], index.start, index.t0, index.length))
        self.bytes_per_step = 4 * (self.obs_dim + self.action_dim) + 8 + 8 + 1
        self.image_bytes_per_step = len(self.cameras) * 3 * self.image_size**2
        # two shards are alive at once: the one in use and the next one, read ahead
        self.steps_per_shard = max(1, self.budget_bytes // self.shard_bytes(1))
        longest = int(self.lengths.max())
        if longest > self.steps_per_shard:
            row = int(np.argmax(self.lengths))
            raise ValueError(
                f"episode {self.episodes['episode_id'][row]!r} has {longest} steps, more than a shard of "
                f"the {self.budget_bytes / 2**20:.1f} MiB memory budget holds ({self.steps_per_shard} steps "
                f"of {self.bytes_per_step + self.image_bytes_per_step} bytes): raise the budget"
            )

    @property
    def total_steps(self) -> int:
        return int(self.lengths.sum())

    def shard_bytes(self, steps: int) -> int:
        """What a shard of ``steps`` steps is accounted at: its copies at the peak, twice (read-ahead)."""
        per_step = COPIES_AT_PEAK * self.bytes_per_step + IMAGE_COPIES_AT_PEAK * self.image_bytes_per_step
        return SHARDS_IN_MEMORY * per_step * steps

    def read(self, episode_rows: np.ndarray) -> StepArrays:
        """The steps of ``episode_rows`` (rows of ``self.episodes``), episodes in stored order.

        Rows are read in table order (Lance's merge_insert may interleave the steps of the episodes of
        one ingest), then put in episode and t order, as ``load_steps`` does.
        """
        rows = np.sort(np.asarray(episode_rows, dtype=np.int64))
        positions = self._index.positions(rows)
        order = np.argsort(positions, kind="stable")
        in_table_order = bool(np.all(order[1:] > order[:-1]))
        table = self._read_positions(positions if in_table_order else positions[order])
        observations = _matrix(table.column("observation"), self.obs_dim, "observation")
        actions = _matrix(table.column("action"), self.action_dim, "action")
        is_correction = table.column("is_correction").to_numpy(zero_copy_only=False)
        if not in_table_order:
            back = np.empty_like(order)
            back[order] = np.arange(len(order))
            observations, actions, is_correction = observations[back], actions[back], is_correction[back]
        lengths = self.lengths[rows]
        episode_index = np.repeat(np.arange(len(rows), dtype=np.int64), lengths)
        t = np.arange(len(positions), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        steps = StepArrays(
            observations=observations,
            actions=actions,
            episode_index=episode_index,
            t=t,
            is_correction=is_correction,
            episodes=self.episodes[rows.tolist()],
        )
        return self._with_frames(steps)

    def _with_frames(self, steps: StepArrays) -> StepArrays:
        """``steps`` with their cameras' frames: from the frame cache when every episode of the shard
        is there (no decoding), else decoded from the table and each episode's frames cached."""
        cache, size = self.frame_cache, self.image_size
        if not self.cameras or cache is None or not size or "content_hash" not in steps.episodes.columns:
            return with_step_images(self.dataset, steps, self.cameras, size or None)
        hashes = steps.episodes["content_hash"].to_list()
        lengths = steps.episodes["length"].to_list()
        cached = {
            camera: [cache.get(h, camera, size, n) for h, n in zip(hashes, lengths, strict=True)]
            for camera in self.cameras
        }
        if all(frames is not None for per_episode in cached.values() for frames in per_episode):
            return steps.with_images({camera: np.concatenate(cached[camera]) for camera in self.cameras})
        images = load_step_images(self.dataset, steps, self.cameras, size)
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        for camera, frames in images.items():
            for i, content_hash in enumerate(hashes):
                if cached[camera][i] is None:
                    cache.put(content_hash, camera, frames[bounds[i] : bounds[i + 1]])
        return steps.with_images(images)

    def _read_positions(self, positions: np.ndarray) -> pyarrow.Table:
        """Rows at ``positions``, in that order. Long contiguous ranges are scanned (offset / limit, about
        twice as fast as ``take``); what is left is taken by position."""
        breaks = np.flatnonzero(np.diff(positions) != 1) + 1
        starts = np.concatenate([[0], breaks]).astype(np.int64)
        ends = np.concatenate([breaks, [len(positions)]]).astype(np.int64)
        parts: list[pyarrow.Table] = []
        pending: list[np.ndarray] = []

        def flush() -> None:
            if pending:
                taken = pyarrow.array(np.concatenate(pending), type=pyarrow.uint64())
                parts.append(self.dataset.take(taken, columns=STEP_COLUMNS))
                pending.clear()

        for begin, end in zip(starts, ends, strict=True):
            if end - begin >= SCAN_MIN_ROWS:
                flush()
                parts.append(
                    self.dataset.to_table(
                        columns=STEP_COLUMNS, offset=int(positions[begin]), limit=int(end - begin)
                    )
                )
            else:
                pending.append(positions[begin:end])
        flush()
        return pyarrow.concat_tables(parts) if len(parts) != 1 else parts[0]

    def blocks(self, episode_rows: np.ndarray, block_steps: int) -> list[np.ndarray]:
        """``episode_rows`` cut, in stored order, into blocks of neighbouring episodes of at most
        ``block_steps`` steps (or one episode): the unit that is shuffled, so that a shard is read as a
        few long stretches of the table rather than many short ones."""
        rows = np.sort(np.asarray(episode_rows, dtype=np.int64))
        blocks, begin, used = [], 0, 0
        for i, length in enumerate(self.lengths[rows].tolist()):
            if i > begin and used + length > block_steps:
                blocks.append(rows[begin:i])
                begin, used = i, 0
            used += length
        if len(rows):
            blocks.append(rows[begin:])
        return blocks


def _sorted_runs(index: StepRowIndex) -> StepRowIndex:
    order = np.lexsort((index.t0, index.episode))
    return StepRowIndex(index.episode[order], index.start[order], index.t0[order], index.length[order])


def assign_to_ranks(lengths: np.ndarray, world_size: int, seed: int) -> np.ndarray:
    """The rank each episode belongs to: disjoint, together covering every episode, steps balanced.

    Episodes are dealt in a seeded random order to the rank with the fewest steps so far, so every
    rank computes the same assignment without talking to the others.
    """
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    owner = np.zeros(len(lengths), dtype=np.int64)
    if world_size == 1:
        return owner
    load = np.zeros(world_size, dtype=np.int64)
    for row in np.random.default_rng(seed).permutation(len(lengths)):
        rank = int(np.argmin(load))
        owner[row] = rank
        load[rank] += int(lengths[row])
    return owner


def plan_shards(
    blocks: list[np.ndarray], lengths: np.ndarray, steps_per_shard: int, seed: int, epoch: int
) -> list[np.ndarray]:
    """This epoch's shards: the blocks of episodes in a seeded random order, packed into groups of at
    most ``steps_per_shard`` steps. When everything fits in one shard the stored order is kept, so the
    one shard is the in-memory selection itself."""
    if not blocks:
        return []
    sizes = np.array([int(lengths[block].sum()) for block in blocks])
    if int(sizes.sum()) <= steps_per_shard:
        return [np.sort(np.concatenate(blocks))]
    order = np.random.default_rng([seed, epoch]).permutation(len(blocks))
    shards, current, used = [], [], 0
    for i in order:
        if current and used + sizes[i] > steps_per_shard:
            shards.append(np.concatenate(current))
            current, used = [], 0
        current.append(blocks[i])
        used += int(sizes[i])
    shards.append(np.concatenate(current))
    return shards
