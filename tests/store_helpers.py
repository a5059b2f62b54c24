"""Shared builders for the store tests: synthetic episodes with real arrays, and a subprocess ingester."""

from __future__ import annotations

import numpy as np

from recap_core.episode import Episode, stable_episode_id


def make_episode(
    index: int,
    length: int = 12,
    task: str = "reach-v3",
    kind: str = "demo",
    obs_dim: int = 39,
    action_dim: int = 4,
    iteration: int = 0,
    seed: int = 0,
    success: bool | None = None,
) -> Episode:
    """A deterministic episode: same arguments, same content (so re-ingest is a true duplicate)."""
    rng = np.random.default_rng([seed, index])
    return Episode(
        episode_id=stable_episode_id("test", task, seed, index),
        task=task,
        prompt=f"do {task}",
        kind=kind,
        success=bool(index % 2 == 0) if success is None else success,
        observations=rng.normal(size=(length, obs_dim)).astype(np.float32),
        actions=rng.uniform(-1, 1, size=(length, action_dim)).astype(np.float32),
        is_correction=(np.arange(length) % 5 == 0) if kind == "intervention" else None,
        iteration=iteration,
    )


def ingest_in_process(uri: str, first: int, count: int, per_batch: int, seed: int) -> list[str]:
    """Run in a separate process: ingest ``count`` episodes in several batches; returns ids added."""
    from recap_core.store import EpisodeStore

    store = EpisodeStore(uri)
    added: list[str] = []
    for start in range(first, first + count, per_batch):
        batch = [make_episode(i, length=8 + i % 5, seed=seed) for i in range(start, min(start + per_batch, first + count))]
        added += store.add_episodes(batch).added
    return added
