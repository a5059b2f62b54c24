"""Improvement indicators I_t: which actions the policy should learn to reproduce when told "positive".

I_t = 1[A_t > eps_task], forced True wherever a human provided the action (a correction is by definition
the behaviour we want). ``mode="sft"`` labels every step True: the paper's first finetune on
demonstrations only, and the plain-SFT baseline.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from recap_core.extraction import INDICATOR_MODES, Method
from recap_core.rules.thresholds import TaskThreshold

INDICATOR_PROMPT_SUFFIXES = {True: "\nAdvantage: positive", False: "\nAdvantage: negative"}
"""How a text-conditioned policy (a VLA trained by LeRobot or openpi) is told I_t: appended to the task
prompt (the paper's Fig. 3; the open implementations' convention). The plain prompt is the indicator
dropped (classifier-free guidance's unconditional branch)."""


def indicator_prompt(prompt: str, indicator: bool | None) -> str:
    """``prompt`` with the indicator as text, or unchanged when it is dropped (``None``)."""
    return prompt if indicator is None else prompt + INDICATOR_PROMPT_SUFFIXES[bool(indicator)]


def indicators(
    advantages: np.ndarray | None,
    tasks: np.ndarray,
    thresholds: Mapping[str, TaskThreshold | float] | None,
    is_correction: np.ndarray,
    mode: str = Method.RECAP,
) -> np.ndarray:
    """Boolean indicator per step."""
    tasks = np.asarray(tasks)
    is_correction = np.asarray(is_correction, dtype=bool)
    if is_correction.shape != tasks.shape:
        raise ValueError(f"is_correction {is_correction.shape} and tasks {tasks.shape} must align")
    if mode not in INDICATOR_MODES:
        modes = tuple(m.value for m in INDICATOR_MODES)
        raise ValueError(f"indicator mode must be one of {modes}, got {mode!r}")
    if mode == Method.SFT:
        return np.ones(len(tasks), dtype=bool)
    if advantages is None or thresholds is None:
        raise ValueError("mode='recap' needs advantages and thresholds")
    advantages = np.asarray(advantages, dtype=np.float64)
    if advantages.shape != tasks.shape:
        raise ValueError(f"advantages {advantages.shape} and tasks {tasks.shape} must align")
    eps = np.empty(len(tasks), dtype=np.float64)
    for task in set(tasks.tolist()):
        if task not in thresholds:
            raise ValueError(f"no threshold for task {task!r}; thresholds cover {sorted(thresholds)}")
        value = thresholds[task]
        eps[tasks == task] = value.threshold if isinstance(value, TaskThreshold) else float(value)
    return (advantages > eps) | is_correction


def positive_fraction_per_task(labels: np.ndarray, tasks: np.ndarray) -> dict[str, float]:
    """Realised fraction of True indicators per task (after corrections are forced), for lineage."""
    labels = np.asarray(labels, dtype=bool)
    tasks = np.asarray(tasks)
    return {task: float(labels[tasks == task].mean()) for task in sorted(set(tasks.tolist()))}
