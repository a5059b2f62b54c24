"""Statistics over a trainer's whole training data, whether it is in memory or streamed over ranks.

Normalisers and advantage scales must be the same on every rank (DDP starts from rank 0's buffers, and
a rank with its own statistics would train another function), so streamed and distributed data get
them from sums over every shard of every rank; data in one process's memory gets them exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from recap_core.models.normalisation import Normaliser
from recap_core.steps import StepArrays
from recap_core.training.distributed import Distributed
from recap_core.training.sources import Shard, StepSource, TrainingData, shards_of

StepColumn = Callable[[Shard], np.ndarray]


def _in_memory_train_rows(
    data: TrainingData, distributed: Distributed
) -> tuple[StepArrays, np.ndarray] | None:
    if data.memory is None or distributed.enabled:
        return None
    index = np.sort(np.concatenate([source.shard.index for source in data.train]))  # type: ignore[attr-defined]
    return data.memory, index


def fit_normalisers(
    data: TrainingData,
    pairs: Sequence[tuple[Normaliser, Callable[[StepArrays], np.ndarray]]],
    distributed: Distributed,
) -> None:
    """Fit each normaliser on its column over the training steps (one pass over the shards for all)."""
    in_memory = _in_memory_train_rows(data, distributed)
    if in_memory is not None:
        steps, index = in_memory
        for normaliser, column in pairs:
            normaliser.fit(column(steps)[index])
        return
    sums = [None] * len(pairs)
    for shard in shards_of(data.train):
        for i, (_, column) in enumerate(pairs):
            values = np.asarray(column(shard.steps)[shard.index], dtype=np.float64)
            part = np.concatenate([[len(values)], values.sum(axis=0), (values**2).sum(axis=0)])
            sums[i] = part if sums[i] is None else sums[i] + part
    for (normaliser, _), total in zip(pairs, sums, strict=True):
        dim = normaliser.mean.shape[0]
        total = distributed.sum(total if total is not None else np.zeros(1 + 2 * dim))
        normaliser.fit_moments(total[0], total[1 : 1 + dim], total[1 + dim :])


def column_moments(
    sources: Sequence[StepSource], column: StepColumn, distributed: Distributed
) -> tuple[float, float, float]:
    """(count, mean, std) of a per-step column over every shard of ``sources`` on every rank."""
    total = np.zeros(3)
    for shard in shards_of(sources):
        values = np.asarray(column(shard), dtype=np.float64)
        total += (len(values), values.sum(), (values**2).sum())
    count, first, second = distributed.sum(total)
    if count == 0:
        return 0.0, 0.0, 0.0
    mean = first / count
    return float(count), float(mean), float(np.sqrt(max(second / count - mean**2, 0.0)))


def column_mean(sources: Sequence[StepSource], column: StepColumn, distributed: Distributed) -> float:
    total = np.zeros(2)
    for shard in shards_of(sources):
        values = np.asarray(column(shard), dtype=np.float64)
        total += (values.sum(), len(values))
    first, count = distributed.sum(total)
    return float(first / count) if count else 0.0


def column_max(sources: Sequence[StepSource], column: StepColumn, distributed: Distributed) -> float:
    best = -np.inf
    for shard in shards_of(sources):
        values = np.asarray(column(shard))
        if len(values):
            best = max(best, float(values.max()))
    return distributed.max(best)
