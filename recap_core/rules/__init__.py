"""The RECAP method's rules as plain numpy functions: rewards, returns, advantages, thresholds, indicators.

Kept free of torch so every rule can be checked against hand-computed values and reused by any pipeline.
"""

from recap_core.rules.advantages import episode_advantages, nstep_advantages
from recap_core.rules.indicators import indicators, positive_fraction_per_task
from recap_core.rules.populations import STEP_KINDS, positive_share_per_kind, step_kinds, threshold_population
from recap_core.rules.rewards import (
    RewardConfig,
    episode_progress,
    normalised_returns,
    normaliser_per_step,
    raw_returns,
    step_rewards,
    task_max_lengths,
    task_normalisers,
)
from recap_core.rules.thresholds import (
    FINETUNE_POSITIVE_FRACTION,
    PRETRAIN_POSITIVE_FRACTION,
    TaskThreshold,
    task_thresholds,
    threshold_for_fraction,
)

__all__ = [
    "FINETUNE_POSITIVE_FRACTION",
    "PRETRAIN_POSITIVE_FRACTION",
    "STEP_KINDS",
    "RewardConfig",
    "TaskThreshold",
    "episode_advantages",
    "episode_progress",
    "indicators",
    "normalised_returns",
    "normaliser_per_step",
    "nstep_advantages",
    "positive_fraction_per_task",
    "positive_share_per_kind",
    "raw_returns",
    "step_kinds",
    "step_rewards",
    "task_max_lengths",
    "task_normalisers",
    "task_thresholds",
    "threshold_for_fraction",
    "threshold_population",
]
