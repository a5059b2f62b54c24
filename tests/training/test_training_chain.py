"""A learning test through the real chain: real Meta-World episodes of mixed quality, V trained on them,
N-step advantages, the threshold on the iteration's own rollouts, indicators, and a RECAP policy.

Nothing is made up: the advantages come from the trained value function, so the test fails if the labels
are inverted or random (the positive-conditioned policy would then not beat the negative-conditioned
one), if the value function ignores outcomes (the AUC drops), or if failures are favoured.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import polars as pl
import pytest
from steps_helpers import ToyEpisode, make_steps, torch_threads

from recap_core.checkpoints import predict_values
from recap_core.models import INDICATOR_NEGATIVE, INDICATOR_POSITIVE, FlowPolicyConfig, ValueNetConfig
from recap_core.models.flow_policy import FlowChunkPolicy
from recap_core.rules import RewardConfig, indicators, nstep_advantages, task_thresholds, threshold_population
from recap_core.sim import (
    DemoConfig,
    RolloutConfig,
    collect_demos,
    eval_seeds,
    evaluate_policy,
    get_task,
    with_max_steps,
)
from recap_core.training import PolicyTrainConfig, ValueTrainConfig, train_policy, train_value_function

warnings.filterwarnings("ignore", message=r"Constant\(s\) may be too high")
TASK = "drawer-open-v3"
LOOKAHEAD = 50


def _auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(random positive > random negative), ties counted half."""
    greater = (positive[:, None] > negative[None, :]).mean()
    ties = (positive[:, None] == negative[None, :]).mean()
    return float(greater + 0.5 * ties)


@pytest.fixture(scope="module")
def chain():
    """Iteration-1 rollouts of mixed quality: in half the episodes the operator gives up early and
    fumbles until the time-out (failures with long tails), in the rest it opens the drawer."""
    with torch_threads(1):
        task = with_max_steps(get_task(TASK), 300)
        demos = DemoConfig(
            failure_share=0.5, give_up_steps=(0, 10), speed_range=(0.8, 1.0), noise_range=(0.0, 0.1), seed=3
        )
        episodes = [
            ToyEpisode(e.task, e.success, e.observations, e.actions, kind="autonomous", prompt=e.prompt)
            for e in collect_demos(task, range(40), demos)
        ]
        steps = make_steps(episodes)
        steps = dataclasses.replace(steps, episodes=steps.episodes.with_columns(pl.lit(1).alias("iteration")))
        reward = RewardConfig(task_max_length={TASK: task.max_steps})
        value_config = ValueTrainConfig(
            epochs=30,
            lr=1e-3,
            weights="last",
            reward=reward,
            architecture=ValueNetConfig(hidden=128, depth=2),
        )
        vf, _ = train_value_function(steps, value_config)
        advantages = nstep_advantages(steps, predict_values(vf, steps), LOOKAHEAD, vf.reward_config)
        tasks = steps.per_step("task")
        population, names = threshold_population(steps, 1)
        thresholds = task_thresholds(advantages, tasks, 0.4, population=population, population_names=names)
        labels = indicators(advantages, tasks, thresholds, steps.is_correction)
        policy_config = PolicyTrainConfig(
            epochs=30, lr=1e-3, architecture=FlowPolicyConfig(hidden=256, depth=3)
        )
        policy, _ = train_policy(steps, labels, policy_config)
        yield task, steps, advantages, labels, thresholds[TASK], policy


def test_threshold_hits_the_target_on_the_rollouts(chain):
    _, _, _, _, threshold, _ = chain
    assert threshold.population == "autonomous steps of iteration 1"
    assert threshold.realised_fraction == pytest.approx(0.4, abs=0.01)


def test_labels_agree_with_episode_outcome(chain):
    _, steps, advantages, labels, _, _ = chain
    success = steps.per_step("success").astype(bool)
    assert 10 <= steps.episodes["success"].sum() <= 30, "the data must mix successes and failures"
    # per episode, the mean advantage separates successes from failures almost perfectly; per step less
    # so, because V is fit in-sample (as the pipeline does) and the steps of a doomed episode after the
    # operator gave up are neutral (A ~ 0) once V has learned that they are doomed.
    episode_mean = np.bincount(steps.episode_index, weights=advantages) / steps.episodes["length"].to_numpy()
    outcome = steps.episodes["success"].to_numpy()
    assert _auc(episode_mean[outcome], episode_mean[~outcome]) > 0.9
    assert _auc(advantages[success], advantages[~success]) > 0.6
    assert labels[success].mean() > labels[~success].mean() + 0.25


def test_failure_tails_are_not_favoured_over_successes(chain):
    _, steps, advantages, _, _, _ = chain
    success = steps.per_step("success").astype(bool)
    lengths = steps.per_step("length")
    tail = ~success & (steps.t >= lengths - LOOKAHEAD)
    assert tail.sum() > 0
    assert advantages[tail].mean() < advantages[success].mean()


def test_positive_conditioned_policy_beats_negative_conditioned_on_held_out_seeds(chain):
    task, _, _, _, _, policy = chain
    seeds = eval_seeds(20)
    rates = {}
    with torch_threads(1):
        for name, indicator in (("positive", INDICATOR_POSITIVE), ("negative", INDICATOR_NEGATIVE)):
            chunk_policy = FlowChunkPolicy(policy.net, indicator=indicator, seed=0)
            result = evaluate_policy(chunk_policy, task, seeds, config=RolloutConfig(num_envs=20))
            rates[name] = result.success_rate
    assert rates["positive"] >= rates["negative"] + 0.4, rates
