"""V^k's diagnostics come from the values the advantages stage computed, not from re-reading its table."""

import numpy as np
import pytest
from steps_helpers import blank_episode, make_steps

from recap_core.loop.value_diagnostics import VALUE_RISES_MIN_SHARE, held_out_value_check, value_diagnostics


def _steps_and_values(rising: list[bool], lengths: list[int], success: list[bool]):
    steps = make_steps([blank_episode("push", n, ok) for n, ok in zip(lengths, success, strict=True)])
    values = np.concatenate(
        [
            np.linspace(-1, 0, n) if up else np.linspace(0, -1, n)
            for up, n in zip(rising, lengths, strict=True)
        ]
    )
    return steps, values


def test_share_rising_counts_only_successful_episodes():
    steps, values = _steps_and_values(
        rising=[True, True, True, True, False, False],
        lengths=[8, 9, 10, 11, 12, 30],
        success=[True, True, True, True, True, False],
    )
    diagnostics = value_diagnostics(steps, values, values)
    assert diagnostics.successful_episodes == 5
    assert diagnostics.share_rising == 0.8
    assert diagnostics.value_rises == (VALUE_RISES_MIN_SHARE <= 0.8)


def test_falling_values_in_successes_fail_the_rule():
    steps, values = _steps_and_values(rising=[False, True], lengths=[10, 10], success=[True, True])
    diagnostics = value_diagnostics(steps, values, values)
    assert diagnostics.share_rising == 0.5
    assert not diagnostics.value_rises


def test_no_success_means_no_verdict_and_a_nan_share():
    steps, values = _steps_and_values(rising=[True], lengths=[10], success=[False])
    diagnostics = value_diagnostics(steps, values, values)
    assert diagnostics.successful_episodes == 0
    assert np.isnan(diagnostics.share_rising)
    assert not diagnostics.value_rises


def test_curves_follow_the_longest_success_and_failure_in_t_order():
    steps, values = _steps_and_values(
        rising=[True, True, False, False], lengths=[5, 12, 7, 20], success=[True, True, False, False]
    )
    # steps in the store's order need not be t order: shuffle, the curves must still be in t order
    order = np.random.default_rng(0).permutation(len(steps))
    shuffled = type(steps)(
        observations=steps.observations[order],
        actions=steps.actions[order],
        episode_index=steps.episode_index[order],
        t=steps.t[order],
        is_correction=steps.is_correction[order],
        episodes=steps.episodes,
    )
    returns = values * 2
    curves = value_diagnostics(shuffled, values[order], returns[order]).curves
    assert set(curves) == {"success (ep0001)", "failure (ep0003)"}
    success_values, success_returns = curves["success (ep0001)"]
    np.testing.assert_allclose(success_values, np.linspace(-1, 0, 12))
    np.testing.assert_allclose(success_returns, 2 * np.linspace(-1, 0, 12))
    assert len(curves["failure (ep0003)"][0]) == 20


def test_the_held_out_check_tells_a_memorising_value_function_from_one_that_generalises():
    rng = np.random.default_rng(0)
    n = 2000
    returns = rng.normal(size=n)
    new = np.r_[np.ones(n // 2, bool), np.zeros(n // 2, bool)]
    memorised = returns + rng.normal(scale=0.01, size=n)  # V^k: fits its own episodes almost exactly
    unrelated = rng.normal(size=n)  # V^{k-1}: nothing in common with these returns
    advantages_in = returns - memorised  # what is left is the fit's noise
    advantages_out = returns - unrelated
    check = held_out_value_check(new, memorised, unrelated, returns, advantages_in, advantages_out, 0.4, 10)
    assert check.new_steps == n // 2 and check.new_episodes == 10
    assert check.mae_in_sample < 0.02 < 1.0 < check.mae_held_out
    assert check.chance_agreement == pytest.approx(0.4**2 + 0.6**2, abs=0.01)
    assert abs(check.indicator_agreement - check.chance_agreement) < 0.05  # noise against signal
    same = held_out_value_check(new, memorised, memorised, returns, advantages_in, advantages_in, 0.4, 10)
    assert same.indicator_agreement == 1.0 and same.advantage_correlation == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least one new step"):
        held_out_value_check(
            new & False, memorised, unrelated, returns, advantages_in, advantages_out, 0.4, 10
        )
