"""Per-task thresholds eps_task: the cut that makes a target fraction of the task's advantages positive.

A fixed global threshold would label almost everything positive on an easy task and almost nothing on a
hard one; the paper instead picks, per task, the percentile that leaves a target fraction above it (30%
in pre-training, 40% in finetuning, some tasks 10%). The fraction is defined on a population (Appendix F:
the demonstration data in pre-training, each iteration's own rollouts in finetuning), which is why the
percentile is taken over a mask of the steps while the threshold then labels every step of the task.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

PRETRAIN_POSITIVE_FRACTION = 0.3
FINETUNE_POSITIVE_FRACTION = 0.4


@dataclass(frozen=True)
class TaskThreshold:
    """The threshold of one task and the fraction of its population it actually leaves strictly above.

    ``n_steps`` counts the population the percentile was taken over, not every labelled step.
    """

    task: str
    threshold: float
    target_fraction: float
    realised_fraction: float
    n_steps: int
    population: str = "all steps"

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def threshold_for_fraction(advantages: np.ndarray, fraction: float) -> float:
    """A threshold with round(fraction * n) advantages strictly above it.

    The cut sits midway between the k-th largest value and the next one, so without ties exactly k lie
    above; ties can only move the realised count by the size of the tie, which ``TaskThreshold`` reports.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"positive fraction must be in [0, 1], got {fraction}")
    values = np.sort(np.asarray(advantages, dtype=np.float64))
    n = len(values)
    if n == 0:
        raise ValueError("cannot choose a threshold for a task with no advantages")
    if not np.all(np.isfinite(values)):
        raise ValueError("advantages contain NaN or inf")
    k = round(fraction * n)
    if k == 0:
        return float(values[-1])
    if k == n:
        return float(np.nextafter(values[0], -np.inf))
    return float(0.5 * (values[n - k - 1] + values[n - k]))


def task_thresholds(
    advantages: np.ndarray,
    tasks: np.ndarray,
    positive_fraction: float = PRETRAIN_POSITIVE_FRACTION,
    overrides: Mapping[str, float] | None = None,
    population: np.ndarray | None = None,
    population_names: Mapping[str, str] | None = None,
) -> dict[str, TaskThreshold]:
    """eps_task for every task in ``tasks`` (one task name per step, aligned with ``advantages``).

    ``overrides`` maps a task to its own target fraction (e.g. 0.1), otherwise ``positive_fraction``.
    ``population`` (bool per step, default all) selects the steps the target fraction is defined on;
    ``population_names`` says in words what it is per task, for lineage.
    """
    advantages = np.asarray(advantages, dtype=np.float64)
    tasks = np.asarray(tasks)
    if advantages.shape != tasks.shape:
        raise ValueError(f"advantages {advantages.shape} and tasks {tasks.shape} must align one per step")
    population = np.ones(len(tasks), dtype=bool) if population is None else np.asarray(population, bool)
    if population.shape != tasks.shape:
        raise ValueError(f"population {population.shape} and tasks {tasks.shape} must align one per step")
    overrides = dict(overrides or {})
    names = dict(population_names or {})
    out: dict[str, TaskThreshold] = {}
    for task in sorted(set(tasks.tolist())):
        task_adv = advantages[(tasks == task) & population]
        if len(task_adv) == 0:
            raise ValueError(f"task {task!r}: the threshold population ({names.get(task, 'mask')}) is empty")
        fraction = float(overrides.get(task, positive_fraction))
        eps = threshold_for_fraction(task_adv, fraction)
        out[task] = TaskThreshold(
            task=task,
            threshold=eps,
            target_fraction=fraction,
            realised_fraction=float(np.mean(task_adv > eps)),
            n_steps=len(task_adv),
            population=names.get(task, "all steps"),
        )
    unknown = set(overrides) - set(out)
    if unknown:
        raise ValueError(f"positive-fraction overrides name tasks with no steps: {sorted(unknown)}")
    return out
