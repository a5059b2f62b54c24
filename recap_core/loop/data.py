"""Reading the steps a stage trains on, at the table versions its upstream stage recorded."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from recap_core.method.rewards import RewardConfig
from recap_core.sim.tasks import get_task
from recap_core.steps import StepArrays
from recap_core.store import EpisodeStore


def episodes_per_iteration(steps: StepArrays) -> dict[int, int]:
    iterations = steps.episodes["iteration"].to_numpy()
    values, counts = np.unique(iterations, return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts, strict=True)}


def demonstration_steps(store: EpisodeStore, versions: Mapping[str, int]) -> StepArrays:
    steps = store.load_steps(kind="demo", versions=versions)
    if len(steps) == 0:
        raise ValueError(
            f"no demonstrations in the episode store at {store.uri}: ingest demonstrations first"
        )
    return steps


def task_steps(store: EpisodeStore, task: str, iteration: int, versions: Mapping[str, int]) -> StepArrays:
    """All of the task's data of iterations <= ``iteration`` (Algorithm 1 trains on all data so far).

    Iteration 0 is the first finetune on the task's demonstrations only: any other data stored as
    iteration 0 (e.g. fleet rollouts that arrived before the first iteration) joins from iteration 1.
    """
    kind = "demo" if iteration == 0 else None
    steps = store.load_steps(task=task, kind=kind, max_iteration=iteration, versions=versions)
    if len(steps) == 0:
        raise ValueError(f"task {task!r} has no episodes of iteration <= {iteration} in {store.uri}")
    return steps


def reward_config(tasks: list[str], max_steps: int | None) -> RewardConfig:
    """Normalise returns by each simulated task's episode limit; unknown tasks use their longest episode."""
    limits: dict[str, int] = {}
    for task in tasks:
        try:
            limits[task] = int(max_steps or get_task(task).max_steps)
        except KeyError:
            continue
    return RewardConfig(task_max_length=limits)
