"""Which steps a threshold's target fraction is defined on, and who produced each step.

The paper (Appendix F, "Advantage threshold") fixes the positive share on a specific population: about
30% of the demonstration data in pre-training, about 40% of each iteration's own rollouts in finetuning.
Taking the percentile over everything a task has so far (demos, older iterations, corrections) lets the
demos' high advantages push the rollouts' share far below target. A step's producer ("kind") is:
  demo        an operator's demonstration step,
  autonomous  an action the policy took itself (autonomous episodes, and the un-corrected part of
              intervention episodes),
  correction  an action a human supervisor provided (always labelled positive).
"""

from __future__ import annotations

import numpy as np

from recap_core.steps import StepArrays
from schemas.derived import STEP_KINDS


def step_kinds(steps: StepArrays) -> np.ndarray:
    """The producer of every step: "demo", "autonomous" or "correction" (see the module docstring)."""
    episode_kind = steps.per_step("kind")
    kinds = np.where(episode_kind == "demo", "demo", "autonomous").astype(object)
    kinds[np.asarray(steps.is_correction, dtype=bool)] = "correction"
    return kinds


def threshold_population(steps: StepArrays, iteration: int) -> tuple[np.ndarray, dict[str, str]]:
    """The steps the target fraction is defined on, per task, and a name for each task's choice.

    Pre-training (iteration < 0) and iteration 0: the demonstrations. Iteration k >= 1: the task's
    autonomous steps of iteration k; a task without any (e.g. fleet data that holds only corrections or
    demos at k) falls back to its non-correction steps of iteration k, then to all its non-correction
    data so far, and the name says which fallback was used.
    """
    kinds = step_kinds(steps)
    tasks = steps.per_step("task")
    step_iteration = steps.per_step("iteration")
    if iteration < 1:
        candidates = [(kinds == "demo", "demonstration steps")]
    else:
        own = step_iteration == iteration
        candidates = [
            (own & (kinds == "autonomous"), f"autonomous steps of iteration {iteration}"),
            (
                own & (kinds != "correction"),
                f"non-correction steps of iteration {iteration} (it has no autonomous steps)",
            ),
        ]
    candidates.append((kinds != "correction", f"all non-correction steps up to iteration {iteration}"))
    candidates.append((np.ones(len(steps), bool), f"all steps up to iteration {iteration}"))
    mask = np.zeros(len(steps), dtype=bool)
    names: dict[str, str] = {}
    for task in sorted(set(tasks.tolist())):
        of_task = tasks == task
        for candidate, name in candidates:
            if np.any(candidate & of_task):
                mask |= candidate & of_task
                names[task] = name
                break
    return mask, names


def positive_share_per_kind(
    labels: np.ndarray, kinds: np.ndarray, tasks: np.ndarray
) -> dict[str, dict[str, float | None]]:
    """Per task, the share of True indicators among each kind's steps (None where a kind has none)."""
    labels = np.asarray(labels, dtype=bool)
    out: dict[str, dict[str, float | None]] = {}
    for task in sorted(set(np.asarray(tasks).tolist())):
        of_task = tasks == task
        out[task] = {}
        for kind in STEP_KINDS:
            chosen = of_task & (kinds == kind)
            out[task][kind] = float(labels[chosen].mean()) if chosen.any() else None
    return out
