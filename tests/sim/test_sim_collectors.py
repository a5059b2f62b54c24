"""Collectors on the light point-mass environment: demos, batched rollouts, interventions, seeds."""

from __future__ import annotations

import numpy as np
import pytest
from sim_helpers import ConstantChunkPolicy, PointMassPDPolicy

from recap_core.policy_api import ChunkPolicy
from recap_core.sim import (
    DemoConfig,
    RolloutConfig,
    SimEnv,
    SupervisorConfig,
    collect_demos,
    collect_rollouts,
    eval_seeds,
    get_task,
    is_eval_seed,
    run_policy,
    train_seeds,
)

TASK = get_task("point-reach")


def test_point_mass_plugs_in_through_the_same_interface():
    env = TASK.make_env()
    assert isinstance(env, SimEnv)
    first = env.reset(7)
    assert first.dtype == np.float32 and first.shape == (env.obs_dim,)
    np.testing.assert_array_equal(env.reset(7), first)
    assert not np.array_equal(env.reset(8), first)
    obs, success = env.step(env.expert_action())
    assert obs.shape == first.shape and success in (True, False)


def test_seed_ranges_are_disjoint():
    train, held_out = set(train_seeds(1000)), set(eval_seeds(1000))
    assert not train & held_out
    assert all(is_eval_seed(s) for s in held_out) and not any(is_eval_seed(s) for s in train)
    with pytest.raises(ValueError, match="training seeds"):
        train_seeds(10, start=999_995)


def test_validation_and_test_seeds_are_disjoint_from_each_other_and_from_training():
    from recap_core.seeds import seed_split

    validation, test = eval_seeds(1000, split="validation"), eval_seeds(1000, split="test")
    assert validation == eval_seeds(1000)  # choosing settings is the default use
    assert validation[0] == 1_000_000 and test[0] == 2_000_000
    assert not set(validation) & set(test) and not set(test) & set(train_seeds(1000))
    assert {seed_split(s) for s in test} == {"test"} and {seed_split(s) for s in validation} == {"validation"}
    with pytest.raises(ValueError, match="evaluation split must be one of"):
        eval_seeds(5, split="holdout")


def test_demos_vary_in_length_and_fail_at_the_configured_share():
    config = DemoConfig(failure_share=0.25, noise_range=(0.0, 0.05), mistake_rate=0.02)
    demos = list(collect_demos(TASK, train_seeds(40), config))
    assert len({d.length for d in demos}) > 10
    designated = [config.gives_up(s) for s in train_seeds(40)]
    assert sum(designated) == 10  # 25% of a contiguous run of 40 seeds, exactly
    failed = [not d.success for d in demos]
    assert all(failed[i] for i, gives_up in enumerate(designated) if gives_up)
    assert 10 <= sum(failed) <= 13  # noise/mistakes may add a failure or two, not many
    for d in demos:
        assert d.kind == "demo" and d.collected_by == "operator:scripted-expert" and d.iteration == 0
        assert not d.is_correction.any()
        assert d.length == TASK.max_steps or d.success
    assert len({d.episode_id for d in demos}) == len(demos)


def test_demos_are_reproducible_and_depend_on_operator_settings():
    seeds = train_seeds(5, start=100)
    first = list(collect_demos(TASK, seeds))
    again = list(collect_demos(TASK, seeds))
    for a, b in zip(first, again, strict=True):
        assert a.episode_id == b.episode_id
        np.testing.assert_array_equal(a.actions, b.actions)
    other = list(collect_demos(TASK, seeds, DemoConfig(seed=1)))
    assert {d.episode_id for d in other}.isdisjoint({d.episode_id for d in first})
    assert any(not np.array_equal(a.actions, b.actions) for a, b in zip(first, other, strict=True))


def test_slower_operators_take_longer():
    seeds = train_seeds(12, start=300)
    quiet = {"noise_range": (0.0, 0.0), "mistake_rate": 0.0, "failure_share": 0.0}
    fast = list(collect_demos(TASK, seeds, DemoConfig(speed_range=(1.0, 1.0), **quiet)))
    slow = list(collect_demos(TASK, seeds, DemoConfig(speed_range=(0.4, 0.4), **quiet)))
    assert all(d.success for d in fast + slow)
    assert sum(d.length for d in slow) > 1.3 * sum(d.length for d in fast)


def test_rollouts_batch_the_policy_and_execute_the_first_k_actions():
    policy = ConstantChunkPolicy([0.0, 0.0], horizon=5)
    assert isinstance(policy, ChunkPolicy)
    seeds = train_seeds(6, start=1000)
    episodes = list(
        collect_rollouts(
            policy,
            TASK,
            seeds,
            collected_by="ckpt:abc",
            iteration=2,
            config=RolloutConfig(num_envs=4, execute_steps=2),
        )
    )
    assert sorted(int(s) for s in seeds) == sorted(seeds)
    assert len(episodes) == 6
    # A policy that never moves fails every episode and runs to the limit, in chunks of 2.
    assert all(e.length == TASK.max_steps and not e.success for e in episodes)
    assert policy.batch_sizes[0] == 4 and max(policy.batch_sizes) == 4
    assert sum(policy.batch_sizes) == 6 * TASK.max_steps // 2
    for e in episodes:
        assert e.kind == "autonomous" and e.iteration == 2 and e.collected_by == "ckpt:abc"
        assert not e.is_correction.any()
        np.testing.assert_array_equal(e.actions, 0.0)


def test_a_competent_policy_succeeds_and_episodes_stop_at_success():
    rollouts = list(
        run_policy(PointMassPDPolicy(), TASK, train_seeds(8, start=2000), RolloutConfig(num_envs=3))
    )
    assert len(rollouts) == 8 and all(r.success for r in rollouts)
    assert all(len(r.actions) < TASK.max_steps for r in rollouts)
    assert sorted(r.seed for r in rollouts) == train_seeds(8, start=2000)


def test_interventions_flag_only_expert_steps_and_keep_the_success_label():
    seeds = train_seeds(10, start=3000)
    supervisor = SupervisorConfig(share=1.0, window=10, takeover_steps=15)
    policy = ConstantChunkPolicy([0.0, 0.0], horizon=5)
    episodes = list(
        collect_rollouts(policy, TASK, seeds, collected_by="ckpt:x", iteration=1, supervisor=supervisor)
    )
    env = TASK.make_env()
    assert episodes and all(e.kind == "intervention" for e in episodes)
    for e in episodes:
        corrected = e.is_correction
        assert corrected.any() and not corrected.all()
        # Policy steps are exactly the stalling zero action; expert steps are what the expert does there.
        np.testing.assert_array_equal(e.actions[~corrected], 0.0)
        env.reset(int(_seed_of(e, seeds, policy_name="ckpt:x")))
        for t in range(e.length):
            if corrected[t]:
                np.testing.assert_allclose(e.actions[t], env.expert_action(), atol=1e-6)
            _, success = env.step(e.actions[t])
        assert success == e.success  # replaying the actions reproduces the stored label
        first = int(np.argmax(corrected))
        assert first >= supervisor.window - 1  # the human watched a full window of proposals first
    assert any(e.success for e in episodes)  # the expert's stretches rescue some episodes


def test_supervisor_watches_the_configured_share_reproducibly():
    seeds = train_seeds(400, start=5000)
    config = SupervisorConfig(share=0.3)
    watched = [config.watches(s) for s in seeds]
    assert watched == [config.watches(s) for s in seeds]
    assert 0.22 < np.mean(watched) < 0.38
    unwatched = [s for s, w in zip(seeds, watched, strict=True) if not w][:4]
    policy = ConstantChunkPolicy([0.0, 0.0])
    episodes = list(
        collect_rollouts(policy, TASK, unwatched, collected_by="c", iteration=1, supervisor=config)
    )
    assert all(e.kind == "autonomous" and not e.is_correction.any() for e in episodes)


def test_bad_policy_output_is_reported_with_the_shape():
    class WrongShape(ConstantChunkPolicy):
        def act(self, observations, prompts):
            return np.zeros((len(observations), 2))

    with pytest.raises(ValueError, match=r"point-reach: policy.act returned shape \(\d+, 2\)"):
        list(run_policy(WrongShape([0, 0]), TASK, train_seeds(2)))


def _seed_of(episode, seeds, policy_name):
    from recap_core.episode import stable_episode_id

    for seed in seeds:
        if (
            stable_episode_id(TASK.name, "rollout", seed, policy_name, episode.iteration)
            == episode.episode_id
        ):
            return seed
    raise AssertionError(f"no seed produced episode {episode.episode_id}")
