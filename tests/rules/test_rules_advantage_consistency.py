"""Returns and advantages agree with each other: the properties the labels RECAP trains on rest on.

A value function that predicts each step's own return exactly leaves nothing to be better or worse than,
so every advantage must be 0, in the N-step and the to-the-end branch alike, for successes and failures.
The regression case is the one a review measured: a 300-step failure with L = 300 and N = 50, whose last
50 steps used to get the zero advantage of a success while its earlier steps got -0.167.
"""

from __future__ import annotations

import numpy as np
import pytest
from steps_helpers import blank_episode, make_steps

from recap_core.rules import (
    RewardConfig,
    episode_advantages,
    normalised_returns,
    nstep_advantages,
    task_thresholds,
)


def _mixed_steps(rng: np.random.Generator, max_length: int, n_episodes: int):
    """Successes and failures of two tasks, some failures timing out at exactly the task's L."""
    episodes = []
    for i in range(n_episodes):
        task = "a" if i % 2 else "b"
        success = bool(rng.random() < 0.5)
        length = int(rng.integers(5, max_length)) if success or i % 3 else max_length
        episodes.append(blank_episode(task, length, success))
    return make_steps(episodes)


@pytest.mark.parametrize("c_fail", [None, 1.0, 3.0, 300.0, 5000.0])
@pytest.mark.parametrize("n", [1, 10, 50, 400])
def test_value_equal_to_own_return_gives_zero_advantage_everywhere(c_fail, n) -> None:
    steps = _mixed_steps(np.random.default_rng(n), max_length=300, n_episodes=24)
    config = RewardConfig(c_fail=c_fail, task_max_length={"a": 300, "b": 300})
    own_return = normalised_returns(steps, config).astype(np.float64)
    assert own_return.min() > -1.0 and own_return.max() <= 0.0  # inside the support, nothing clipped
    np.testing.assert_allclose(nstep_advantages(steps, own_return, n, config), 0.0, atol=1e-6)
    np.testing.assert_allclose(episode_advantages(steps, own_return, config), 0.0, atol=1e-6)


def test_failure_tail_no_longer_looks_like_a_success_regression() -> None:
    """The measured case: L = 300, N = 50, a 300-step failure next to a 200-step success."""
    steps = make_steps([blank_episode("push", 300, False), blank_episode("push", 200, True)])
    config = RewardConfig(task_max_length={"push": 300})
    v = normalised_returns(steps, config).astype(np.float64)
    adv = nstep_advantages(steps, v, n=50, reward_config=config)
    failure = adv[:300]
    # before the fix: -0.167 for t < 250 and 0.000 on the last 50 steps; now one consistent value.
    np.testing.assert_allclose(failure[:250], 0.0, atol=1e-6)
    np.testing.assert_allclose(failure[250:], 0.0, atol=1e-6)
    # and a failure's states are worth less than any success's (the value target keeps the outcome).
    assert v[:300].max() < v[300:].min()


def test_noisy_value_does_not_favour_the_last_steps_of_failures() -> None:
    """With V = own return + noise, a failure's last N steps are not positive more often than its
    earlier steps (before the fix about 95% of the tail was positive against 0% of the rest)."""
    rng = np.random.default_rng(0)
    episodes = [blank_episode("push", int(rng.integers(80, 250)), True) for _ in range(30)]
    episodes += [blank_episode("push", 300, False) for _ in range(30)]
    steps = make_steps(episodes)
    config = RewardConfig(task_max_length={"push": 300})
    values = normalised_returns(steps, config) + rng.normal(0.0, 0.01, len(steps))
    adv = nstep_advantages(steps, values, n=50, reward_config=config)
    eps = task_thresholds(adv, steps.per_step("task"), positive_fraction=0.4)["push"].threshold
    failed = ~steps.per_step("success").astype(bool)
    tail = failed & (steps.t >= 250)
    earlier = failed & (steps.t < 250)
    tail_share = float(np.mean(adv[tail] > eps))
    earlier_share = float(np.mean(adv[earlier] > eps))
    assert tail_share <= earlier_share + 0.02, (tail_share, earlier_share)
