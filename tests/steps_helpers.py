"""Builders of small StepArrays for the core tests (plain numpy; the real store produces the same type)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import polars as pl
import torch

from recap_core.steps import StepArrays


@dataclass
class ToyEpisode:
    task: str
    success: bool
    observations: np.ndarray
    actions: np.ndarray
    is_correction: np.ndarray | None = None
    kind: str = "demo"
    prompt: str | None = None


def make_steps(episodes: Sequence[ToyEpisode]) -> StepArrays:
    """Concatenate episodes into a StepArrays, in the order given."""
    rows = []
    for i, ep in enumerate(episodes):
        rows.append(
            {
                "episode_id": f"ep{i:04d}",
                "task": ep.task,
                "prompt": ep.prompt or f"do the {ep.task} task",
                "kind": ep.kind,
                "success": ep.success,
                "length": len(ep.actions),
                "iteration": 0,
            }
        )
    lengths = [len(ep.actions) for ep in episodes]
    return StepArrays(
        observations=np.concatenate([ep.observations for ep in episodes]).astype(np.float32),
        actions=np.concatenate([ep.actions for ep in episodes]).astype(np.float32),
        episode_index=np.repeat(np.arange(len(episodes)), lengths).astype(np.int64),
        t=np.concatenate([np.arange(n) for n in lengths]).astype(np.int64),
        is_correction=np.concatenate(
            [
                ep.is_correction if ep.is_correction is not None else np.zeros(len(ep.actions), bool)
                for ep in episodes
            ]
        ),
        episodes=pl.DataFrame(rows),
    )


def blank_episode(task: str, length: int, success: bool, obs_dim: int = 3, action_dim: int = 2) -> ToyEpisode:
    """An episode whose observations encode (t, task id) - enough for rule tests."""
    obs = np.zeros((length, obs_dim), np.float32)
    obs[:, 0] = np.arange(length)
    return ToyEpisode(task, success, obs, np.zeros((length, action_dim), np.float32))


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Small networks run far faster on one thread than on two contended ones; restore afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
