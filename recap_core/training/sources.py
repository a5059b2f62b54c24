"""Where a trainer's samples come from: all steps in memory, or shards streamed from the store.

Both give the trainer ``Shard``s (whole episodes as ``StepArrays``, the flat indices to sample from and
the per-step columns joined from derived tables), so the losses, action chunks and returns are computed
the same way on either. The in-memory path is one shard that is the whole selection; the streaming path
reads shards under a memory budget. For distributed training each rank gets its own disjoint episodes.
When the streamed selection fits in one shard, the two paths draw exactly the same samples for a seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from recap_core.steps import StepArrays
from recap_core.store.streaming import BLOCKS_PER_SHARD, StreamingStepReader, assign_to_ranks, plan_shards
from recap_core.training.config import READERS  # noqa: F401 - the settings' choices, re-exported

# Per-step columns for a shard (e.g. {"indicator": ..., "advantage": ...}), aligned with its steps.
ColumnReader = Callable[[StepArrays], Mapping[str, np.ndarray]]


@dataclass(frozen=True)
class Shard:
    """Whole episodes and what to sample from them."""

    steps: StepArrays
    index: np.ndarray
    columns: Mapping[str, np.ndarray] = field(default_factory=dict)


class StepSource:
    """The samples of one rank and one split (train or held-out), shard after shard."""

    rank: int = 0

    def shards(self, epoch: int) -> Iterator[Shard]:
        raise NotImplementedError

    def batches(
        self, epoch: int, rng: np.random.Generator, batch: int, limit: int | None
    ) -> Iterator[tuple[Shard, np.ndarray]]:
        """Shuffled minibatches: each shard's samples in a random order, ``ceil(n / batch)`` batches per
        shard (the last one topped up from a fresh permutation), or ``limit`` batches in all, cycling
        through further passes over the data when it runs out."""
        produced, repeat = 0, 0
        while True:
            for shard in self.shards(epoch + repeat * 1_000_003):
                n = len(shard.index)
                if n == 0:
                    continue
                count = limit if limit is not None and self.single_shard else math.ceil(n / batch)
                order = np.concatenate(
                    [rng.permutation(shard.index) for _ in range(math.ceil(count * batch / n))]
                )
                for step in range(count):
                    if limit is not None and produced >= limit:
                        return
                    yield shard, order[step * batch : (step + 1) * batch]
                    produced += 1
            if limit is None or produced >= limit or produced == 0:
                return
            repeat += 1

    def batch_count(self, epoch: int, batch: int, limit: int | None) -> int:
        if limit is not None:
            return limit if self.sample_count else 0
        return sum(math.ceil(size / batch) for size in self.shard_sizes(epoch) if size)

    @property
    def single_shard(self) -> bool:
        raise NotImplementedError

    @property
    def sample_count(self) -> int:
        raise NotImplementedError

    def shard_sizes(self, epoch: int) -> list[int]:
        raise NotImplementedError


class InMemorySource(StepSource):
    """Every step already in memory; samples are ``index`` (e.g. the training split's flat indices)."""

    def __init__(
        self, steps: StepArrays, index: np.ndarray, columns: Mapping[str, np.ndarray], rank: int = 0
    ):
        self.shard = Shard(steps, np.asarray(index, dtype=np.int64), columns)
        self.rank = rank

    def shards(self, epoch: int) -> Iterator[Shard]:
        yield self.shard

    @property
    def single_shard(self) -> bool:
        return True

    @property
    def sample_count(self) -> int:
        return len(self.shard.index)

    def shard_sizes(self, epoch: int) -> list[int]:
        return [len(self.shard.index)]


class StreamingSource(StepSource):
    """Some episodes of a ``StreamingStepReader``, read a shard at a time in a seeded order per epoch."""

    def __init__(
        self,
        reader: StreamingStepReader,
        episode_rows: np.ndarray,
        seed: int,
        columns: ColumnReader | None = None,
        rank: int = 0,
    ):
        self.reader = reader
        self.episode_rows = np.asarray(episode_rows, dtype=np.int64)
        self.seed = seed
        self.columns = columns
        self.rank = rank
        self._blocks: list[np.ndarray] | None = None

    def plan(self, epoch: int) -> list[np.ndarray]:
        if self._blocks is None:
            block_steps = max(1, self.reader.steps_per_shard // BLOCKS_PER_SHARD)
            self._blocks = self.reader.blocks(self.episode_rows, block_steps)
        return plan_shards(
            self._blocks, self.reader.lengths, self.reader.steps_per_shard, self.seed + self.rank, epoch
        )

    def _read(self, rows: np.ndarray) -> Shard:
        steps = self.reader.read(rows)
        columns = dict(self.columns(steps)) if self.columns is not None else {}
        return Shard(steps, np.arange(len(steps), dtype=np.int64), columns)

    def shards(self, epoch: int) -> Iterator[Shard]:
        """Shard after shard; the next one is read in a background thread while this one is used (Lance
        reads without holding the GIL), which is why a shard is half of the memory budget."""
        plan = self.plan(epoch)
        if not plan:
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="recap-shard-reader") as pool:
            pending = pool.submit(self._read, plan[0])
            for rows in plan[1:]:
                current = pending.result()
                pending = pool.submit(self._read, rows)
                yield current
                del current
            yield pending.result()

    @property
    def single_shard(self) -> bool:
        return int(self.reader.lengths[self.episode_rows].sum()) <= self.reader.steps_per_shard

    @property
    def sample_count(self) -> int:
        return int(self.reader.lengths[self.episode_rows].sum())

    def shard_sizes(self, epoch: int) -> list[int]:
        return [int(self.reader.lengths[rows].sum()) for rows in self.plan(epoch)]


@dataclass(frozen=True)
class TrainingData:
    """A trainer's view of its data: every selected episode (all ranks), and this process's sources.

    ``ranks`` are the ranks this process computes: its own under torchrun, or all of them when one
    process stands in for ``world_size`` ranks by accumulating their gradients (the reference a
    distributed run is checked against). ``memory`` is the whole selection when it is in memory.
    """

    episodes: pl.DataFrame
    held_out: np.ndarray  # bool per episode row
    train: list[StepSource]
    val: list[StepSource]
    obs_dim: int
    action_dim: int
    world_size: int = 1
    memory: StepArrays | None = None

    def counts(self) -> dict[str, int]:
        lengths = self.episodes["length"].to_numpy().astype(np.int64)
        return {
            "n_train_steps": int(lengths[~self.held_out].sum()),
            "n_val_steps": int(lengths[self.held_out].sum()),
            "n_train_episodes": int((~self.held_out).sum()),
            "n_val_episodes": int(self.held_out.sum()),
        }


def held_out_episodes(episodes: pl.DataFrame, val_fraction: float, seed: int) -> np.ndarray:
    """Which episodes form the held-out split: drawn per task, so every task with at least two episodes
    is on both sides; whole episodes, so no step of a held-out episode leaks into training."""
    rng = np.random.default_rng(seed)
    tasks = np.asarray(episodes["task"].to_list())
    held_out = np.zeros(len(tasks), dtype=bool)
    if val_fraction > 0:
        for task in sorted(set(tasks.tolist())):
            rows = np.flatnonzero(tasks == task)
            n_val = round(val_fraction * len(rows))
            n_val = min(max(n_val, 1), len(rows) - 1) if len(rows) >= 2 else 0
            held_out[rng.choice(rows, size=n_val, replace=False)] = True
    return held_out


def _ranks(world_size: int, rank: int | None) -> list[int]:
    if world_size < 1 or (rank is not None and not 0 <= rank < world_size):
        raise ValueError(f"rank {rank} is not in a world of {world_size} processes")
    return list(range(world_size)) if rank is None else [rank]


def in_memory_data(
    steps: StepArrays,
    columns: Mapping[str, np.ndarray],
    val_fraction: float,
    seed: int,
    world_size: int = 1,
    rank: int | None = 0,
) -> TrainingData:
    """All of ``steps`` in memory. ``rank`` None: this process computes every rank (accumulation)."""
    held_out = held_out_episodes(steps.episodes, val_fraction, seed)
    owner = assign_to_ranks(steps.episodes["length"].to_numpy(), world_size, seed)
    step_held_out = held_out[steps.episode_index]
    step_owner = owner[steps.episode_index]
    train, val = [], []
    for r in _ranks(world_size, rank):
        train.append(InMemorySource(steps, np.flatnonzero(~step_held_out & (step_owner == r)), columns, r))
        val.append(InMemorySource(steps, np.flatnonzero(step_held_out & (step_owner == r)), columns, r))
    return TrainingData(
        episodes=steps.episodes,
        held_out=held_out,
        train=train,
        val=val,
        obs_dim=int(steps.observations.shape[1]),
        action_dim=int(steps.actions.shape[1]),
        world_size=world_size,
        memory=steps,
    )


def streaming_data(
    reader: StreamingStepReader,
    columns: ColumnReader | None,
    val_fraction: float,
    seed: int,
    world_size: int = 1,
    rank: int | None = 0,
) -> TrainingData:
    """The reader's selection, streamed: each rank reads only its own episodes, a shard at a time."""
    held_out = held_out_episodes(reader.episodes, val_fraction, seed)
    owner = assign_to_ranks(reader.lengths, world_size, seed)
    train, val = [], []
    for r in _ranks(world_size, rank):
        train.append(StreamingSource(reader, np.flatnonzero(~held_out & (owner == r)), seed, columns, r))
        val.append(StreamingSource(reader, np.flatnonzero(held_out & (owner == r)), seed + 7, columns, r))
    return TrainingData(
        episodes=reader.episodes,
        held_out=held_out,
        train=train,
        val=val,
        obs_dim=reader.obs_dim,
        action_dim=reader.action_dim,
        world_size=world_size,
    )


def shards_of(sources: Sequence[StepSource], epoch: int = 0) -> Iterator[Shard]:
    """Every shard of ``sources`` once (statistics passes: normalisers, advantage moments)."""
    for source in sources:
        yield from source.shards(epoch)
