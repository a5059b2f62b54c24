"""Advantages in the value function's normalised units.

Post-training (N-step, default N = 50), with Z = L + C_fail the task's normaliser (see rewards.py):
    A_t = (sum_{t'=t}^{t+N-1} r_t') / Z + V(o_{t+N}) - V(o_t)          if t + N < T
    A_t = R_t / Z - V(o_t)                                             otherwise (truncated at the end)
Both branches use the same unclipped normalisation as the value targets, so R_t / Z equals
sum_{t'<t+N} r_t' / Z + R_{t+N} / Z exactly: a value function equal to each step's own return gives
A = 0 at every step of every episode, and a failure's last N steps are never mistaken for a success's.

Pre-training (full episode): A_t = R_t / Z - V(o_t).
"""

from __future__ import annotations

import numpy as np

from recap_core.rules.rewards import RewardConfig, normalised_returns, normaliser_per_step, step_rewards
from recap_core.steps import StepArrays


def _check_values(steps: StepArrays, values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (len(steps),):
        raise ValueError(f"values has shape {values.shape}, expected ({len(steps)},) - one per step")
    steps.require_finite(values, "value")
    return values


def nstep_advantages(
    steps: StepArrays, values: np.ndarray, n: int = 50, reward_config: RewardConfig | None = None
) -> np.ndarray:
    """N-step advantages per step (float32), truncated at each episode's end."""
    if n < 1:
        raise ValueError(f"n (lookahead) must be >= 1, got {n}")
    values = _check_values(steps, values)
    norm = normaliser_per_step(steps, reward_config)
    rewards = step_rewards(steps, reward_config)
    prefix = np.concatenate([[0.0], np.cumsum(rewards)])
    index = np.arange(len(steps), dtype=np.int64)
    ahead = index + n
    inside = ahead < steps.episode_end
    safe_ahead = np.where(inside, ahead, index)
    bootstrapped = (prefix[safe_ahead] - prefix[index]) / norm + values[safe_ahead] - values
    to_end = normalised_returns(steps, reward_config).astype(np.float64) - values
    return np.where(inside, bootstrapped, to_end).astype(np.float32)


def episode_advantages(
    steps: StepArrays, values: np.ndarray, reward_config: RewardConfig | None = None
) -> np.ndarray:
    """Full-episode advantages R_t / L - V(o_t) (float32), used for pre-training."""
    values = _check_values(steps, values)
    return (normalised_returns(steps, reward_config).astype(np.float64) - values).astype(np.float32)
