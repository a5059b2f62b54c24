"""Reading the steps a stage trains on, at the table versions its upstream stage recorded."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from recap_core.rules.rewards import RewardConfig
from recap_core.sim.tasks import get_task
from recap_core.steps import StepArrays
from recap_core.store import EpisodeStore


def episodes_per_iteration(episodes: StepArrays | pl.DataFrame) -> dict[int, int]:
    frame = episodes if isinstance(episodes, pl.DataFrame) else episodes.episodes
    values, counts = np.unique(frame["iteration"].to_numpy(), return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts, strict=True)}


def demonstration_episodes(store: EpisodeStore, versions: Mapping[str, int]) -> pl.DataFrame:
    """Every demonstration (pre-training's selection), without loading a step."""
    episodes = store.episodes(kind="demo", versions=versions).frame
    if episodes.is_empty():
        raise ValueError(
            f"no demonstrations in the episode store at {store.uri}: ingest demonstrations first"
        )
    return episodes


def demonstration_steps(store: EpisodeStore, versions: Mapping[str, int]) -> StepArrays:
    demonstration_episodes(store, versions)
    return store.load_steps(kind="demo", versions=versions)


def _task_selection(task: str, iteration: int) -> dict:
    """Algorithm 1 trains on all data so far: the task's episodes of iterations <= ``iteration``.

    Iteration 0 is the first finetune on the task's demonstrations only: any other data stored as
    iteration 0 (e.g. fleet rollouts that arrived before the first iteration) joins from iteration 1.
    """
    return {"task": task, "kind": "demo" if iteration == 0 else None, "max_iteration": iteration}


def task_episodes(
    store: EpisodeStore, task: str, iteration: int, versions: Mapping[str, int]
) -> pl.DataFrame:
    episodes = store.episodes(**_task_selection(task, iteration), versions=versions).frame
    if episodes.is_empty():
        raise ValueError(f"task {task!r} has no episodes of iteration <= {iteration} in {store.uri}")
    return episodes


def task_steps(store: EpisodeStore, task: str, iteration: int, versions: Mapping[str, int]) -> StepArrays:
    """All of the task's data of iterations <= ``iteration``, in memory (see ``_task_selection``)."""
    task_episodes(store, task, iteration, versions)
    return store.load_steps(**_task_selection(task, iteration), versions=versions)


def reward_config(tasks: list[str], max_steps: int | None, c_fail: float | None = None) -> RewardConfig:
    """The reward of ``tasks``: ``c_fail`` (None: each task's episode limit) and returns normalised by
    each simulated task's episode limit; unknown tasks use their longest episode."""
    limits: dict[str, int] = {}
    for task in tasks:
        try:
            limits[task] = int(max_steps or get_task(task).max_steps)
        except KeyError:
            continue
    return RewardConfig(c_fail=c_fail, task_max_length=limits)
