"""Evaluation metrics against a hand count."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sim_helpers import ConstantChunkPolicy, PointMassPDPolicy

from recap_core.sim import RolloutConfig, eval_seeds, evaluate_policy, get_task, run_policy, summarize


def test_summarize_matches_a_hand_count():
    # 4 episodes, control period 0.5 s, reset 10 s: lengths 20, 40, 60, 80 steps; first and third succeed.
    result = summarize(
        "t", [20, 40, 60, 80], [True, False, True, False], control_period=0.5, reset_seconds=10.0
    )
    assert result.episodes == 4 and result.successes == 2
    assert result.success_rate == 0.5
    assert result.success_rate_se == pytest.approx(math.sqrt(0.25 / 4))
    # Successful durations: 10 s and 30 s -> mean 20 s, sample std 14.142, se 10.
    assert result.mean_success_duration_s == pytest.approx(20.0)
    assert result.mean_success_duration_se == pytest.approx(10.0)
    # Robot time: (10+10) + (20+10) + (30+10) + (40+10) = 140 s -> 2 successes / (140/3600 h) = 51.43 /h.
    assert result.robot_hours == pytest.approx(140 / 3600)
    assert result.throughput_per_hour == pytest.approx(2 * 3600 / 140)
    hours = np.array([20, 30, 40, 50]) / 3600
    x = np.array([1, 0, 1, 0])
    r = 2 / hours.sum()
    expected_se = math.sqrt(((x - r * hours) ** 2).sum() / (4 * 3)) / hours.mean()
    assert result.throughput_se == pytest.approx(expected_se)
    # By hand: R = 51.43/h; R*hours = 2/7, 3/7, 4/7, 5/7; residuals 5/7, -3/7, 3/7, -5/7;
    # sum of squares 68/49; sqrt(68/49/12) = 0.3401; divided by mean hours 35/3600 -> 34.98 /h.
    assert expected_se == pytest.approx(34.98, abs=0.01)


def test_summarize_without_successes_has_zero_throughput_and_undefined_duration():
    result = summarize("t", [5, 5], [False, False], control_period=1.0, reset_seconds=0.0)
    assert result.success_rate == 0.0 and result.throughput_per_hour == 0.0
    assert math.isnan(result.mean_success_duration_s)
    with pytest.raises(ValueError, match="task t"):
        summarize("t", [1, 2], [True], control_period=1.0, reset_seconds=0.0)


def test_evaluate_policy_counts_what_the_rollouts_did():
    task = get_task("point-reach")
    seeds = eval_seeds(10)
    config = RolloutConfig(num_envs=4)
    rollouts = list(run_policy(PointMassPDPolicy(), task, seeds, config))
    result = evaluate_policy(PointMassPDPolicy(), task, seeds, reset_seconds=5.0, config=config)
    successes = sum(r.success for r in rollouts)
    steps = sum(len(r.actions) for r in rollouts)
    assert result.successes == successes == 10
    assert result.control_period_s == 0.05
    assert result.robot_hours == pytest.approx((steps * 0.05 + 10 * 5.0) / 3600)
    assert result.throughput_per_hour == pytest.approx(successes / result.robot_hours)

    idle = evaluate_policy(ConstantChunkPolicy([0, 0]), task, seeds, reset_seconds=5.0, config=config)
    assert idle.success_rate == 0.0 and idle.throughput_per_hour == 0.0
    assert idle.robot_hours == pytest.approx(10 * (task.max_steps * 0.05 + 5.0) / 3600)
