"""The strict-success variant of push used by the failure-mode-removal study, on the real simulator."""

from __future__ import annotations

import numpy as np
import pytest

from recap_core.loop.settings import preset
from recap_core.sim import DemoConfig, get_task, run_demo
from recap_core.sim.variants import STRICT_PUSH_TOLERANCE_M, StrictPushEnv

# An operator that never gives up or errs: the only difference between the tasks is the success rule.
STEADY = DemoConfig(speed_range=(1.0, 1.0), noise_range=(0.0, 0.0), mistake_rate=0.0, failure_share=0.0)


def test_strict_push_is_registered_with_its_own_prompt_and_the_push_limits():
    strict, push = get_task("push-strict-v3"), get_task("push-v3")
    assert strict.prompt != push.prompt
    assert strict.max_steps == push.max_steps and strict.motion_dims == push.motion_dims
    assert isinstance(strict.make_env(), StrictPushEnv)
    for name in ("study-fast", "study-full"):
        assert "push-strict-v3" in preset(name).tasks


@pytest.mark.parametrize("seed", [0, 1])
def test_strict_success_needs_the_tighter_tolerance(seed):
    strict_task, push_task = get_task("push-strict-v3"), get_task("push-v3")
    env = strict_task.make_env()
    strict = run_demo(env, strict_task, seed, STEADY, "test")
    loose = run_demo(push_task.make_env(), push_task, seed, STEADY, "test")
    assert loose.success
    # Same initial state, same expert: the strict episode cannot end before the loose one.
    np.testing.assert_array_equal(strict.observations[0], loose.observations[0])
    assert strict.length >= loose.length
    if strict.success:
        assert env.puck_to_goal() <= STRICT_PUSH_TOLERANCE_M
    else:
        assert strict.length == strict_task.max_steps


def test_strict_push_rejects_a_looser_tolerance_than_push():
    with pytest.raises(ValueError, match="tolerance must be in"):
        StrictPushEnv(0.08)
