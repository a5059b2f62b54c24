"""Evaluation on held-out initial states: success rate, duration of successes and throughput, each with
its standard error.

Throughput is what a deployment cares about: successes per hour of robot time, where robot time is every
executed step (successful or not) times the control period plus a reset per episode. It is a ratio of two
sums over episodes, so its standard error uses the ratio (delta-method) estimator:
se(R) = sqrt(sum_i (x_i - R y_i)^2 / (n (n - 1))) / mean(y), with x_i = success_i and y_i = hours_i.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from recap_core.policy_api import ChunkPolicy
from recap_core.sim.environment import TaskSpec
from recap_core.sim.pool import FinishedRollout
from recap_core.sim.rollouts import RolloutConfig, run_policy


@dataclass(frozen=True)
class EvalResult:
    """One policy on one task. Durations in seconds of robot time; NaN where undefined (e.g. no success)."""

    task: str
    episodes: int
    successes: int
    success_rate: float
    success_rate_se: float
    mean_success_duration_s: float
    mean_success_duration_se: float
    throughput_per_hour: float
    throughput_se: float
    robot_hours: float
    control_period_s: float
    reset_s: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def summarize(
    task: str,
    lengths: Sequence[int],
    successes: Sequence[bool],
    *,
    control_period: float,
    reset_seconds: float,
) -> EvalResult:
    """The metrics of a set of episodes given their step counts and success labels."""
    length = np.asarray(lengths, dtype=np.float64)
    success = np.asarray(successes, dtype=bool)
    n = len(length)
    if n == 0 or len(success) != n:
        raise ValueError(
            f"task {task}: need as many success labels as lengths (> 0), got {len(success)} and {n}"
        )
    p = float(success.mean())
    durations = length[success] * control_period
    hours = (length * control_period + reset_seconds) / 3600.0
    throughput = float(success.sum() / hours.sum())
    if n > 1:
        residual = success - throughput * hours
        throughput_se = float(math.sqrt((residual**2).sum() / (n * (n - 1))) / hours.mean())
        success_rate_se = math.sqrt(p * (1.0 - p) / n)
    else:
        throughput_se = success_rate_se = math.nan
    mean_duration = float(durations.mean()) if len(durations) else math.nan
    duration_se = float(durations.std(ddof=1) / math.sqrt(len(durations))) if len(durations) > 1 else math.nan
    return EvalResult(
        task=task,
        episodes=n,
        successes=int(success.sum()),
        success_rate=p,
        success_rate_se=success_rate_se,
        mean_success_duration_s=mean_duration,
        mean_success_duration_se=duration_se,
        throughput_per_hour=throughput,
        throughput_se=throughput_se,
        robot_hours=float(hours.sum()),
        control_period_s=control_period,
        reset_s=reset_seconds,
    )


def evaluate_policy(
    policy: ChunkPolicy,
    task: TaskSpec,
    seeds: Sequence[int],
    *,
    reset_seconds: float = 10.0,
    config: RolloutConfig | None = None,
    on_episode: Callable[[FinishedRollout], None] | None = None,
) -> EvalResult:
    """Run ``policy`` unsupervised from each seed (use ``eval_seeds``) and summarise."""
    rollouts = []
    for rollout in run_policy(policy, task, seeds, config, supervisor=None):
        rollouts.append(rollout)
        if on_episode is not None:
            on_episode(rollout)
    if not rollouts:
        raise ValueError(f"task {task.name}: no evaluation seeds given")
    return summarize(
        task.name,
        [len(r.actions) for r in rollouts],
        [r.success for r in rollouts],
        control_period=rollouts[0].control_period,
        reset_seconds=reset_seconds,
    )
