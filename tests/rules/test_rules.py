"""The method's rules against hand-computed values."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest
import torch
from steps_helpers import blank_episode, make_steps

from recap_core.models import (
    INDICATOR_DROPPED,
    INDICATOR_NEGATIVE,
    INDICATOR_POSITIVE,
    FlowMatchingPolicy,
    FlowPolicyConfig,
    HashedPromptEncoder,
    expected_value,
    two_hot,
)
from recap_core.models.flow_policy import drop_indicators
from recap_core.models.value import bin_support
from recap_core.rules import (
    RewardConfig,
    episode_advantages,
    indicators,
    normalised_returns,
    nstep_advantages,
    positive_fraction_per_task,
    positive_share_per_kind,
    raw_returns,
    step_kinds,
    step_rewards,
    task_thresholds,
    threshold_for_fraction,
    threshold_population,
)
from recap_core.training import awr_weights, spo_flow_objective

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_rewards_and_returns_follow_eq5_with_last_step_terminal() -> None:
    steps = make_steps([blank_episode("a", 4, True), blank_episode("a", 4, False)])
    config = RewardConfig(c_fail=10)
    np.testing.assert_array_equal(step_rewards(steps, config), [-1, -1, -1, 0, -1, -1, -1, -10])
    np.testing.assert_array_equal(raw_returns(steps, config), [-3, -2, -1, 0, -13, -12, -11, -10])


def test_returns_normalised_per_task_by_max_length_plus_c_fail_without_clipping() -> None:
    steps = make_steps(
        [
            blank_episode("a", 4, True),
            blank_episode("a", 5, False),
            blank_episode("b", 2, True),
        ]
    )
    # task a: L = 5 (longest episode), default C_fail = L, so Z = 10; the failure keeps its time structure.
    np.testing.assert_allclose(
        normalised_returns(steps),
        [-0.3, -0.2, -0.1, 0.0, -0.9, -0.8, -0.7, -0.6, -0.5, -0.25, 0.0],
        atol=1e-6,
    )
    # an explicit C_fail changes Z to L + C_fail: raw [-5..-1] / 6.
    np.testing.assert_allclose(
        normalised_returns(steps, RewardConfig(c_fail=1))[4:9], np.array([-5, -4, -3, -2, -1]) / 6, atol=1e-6
    )
    # a configured L overrides the observed maximum for its task only (Z = 20 for a, 4 for b).
    out = normalised_returns(steps, RewardConfig(task_max_length={"a": 10}))
    np.testing.assert_allclose(out[:4], [-0.15, -0.1, -0.05, 0.0], atol=1e-6)
    np.testing.assert_allclose(out[9:], [-0.25, 0.0], atol=1e-6)
    # a huge C_fail still fits: every return stays strictly above -1.
    assert normalised_returns(steps, RewardConfig(c_fail=1e6)).min() > -1.0


def test_return_outside_a_narrowed_support_is_refused_not_clipped() -> None:
    steps = make_steps([blank_episode("a", 4, False)])
    with pytest.raises(ValueError, match=r"episode ep0000: normalised return -0.8750 at t=0 lies outside"):
        normalised_returns(steps, support=(-0.5, 0.0))


def test_normaliser_shorter_than_an_episode_is_rejected_naming_it() -> None:
    steps = make_steps([blank_episode("a", 4, True), blank_episode("a", 6, True)])
    with pytest.raises(ValueError, match=r"episode ep0001: column 'length' = 6"):
        normalised_returns(steps, RewardConfig(task_max_length={"a": 5}))


def test_two_hot_encoding_decodes_exactly_and_respects_support() -> None:
    support = bin_support(201, -1.0, 0.0)
    assert support[1] - support[0] == pytest.approx(0.005)
    values = torch.tensor([-1.0, -0.3333, 0.0, -0.0025, -0.5, 3.0, -7.0], dtype=torch.float64)
    target = two_hot(values, support.double())
    assert torch.allclose(target.sum(-1), torch.ones(7, dtype=torch.float64))
    assert (target > 0).sum(-1).max() <= 2
    # -0.0025 sits halfway between the last two bins (-0.005 and 0).
    assert target[3, 199].item() == pytest.approx(0.5) and target[3, 200].item() == pytest.approx(0.5)
    assert target[4, 100].item() == pytest.approx(1.0)
    decoded = target @ support.double()
    np.testing.assert_allclose(decoded.numpy(), [-1.0, -0.3333, 0.0, -0.0025, -0.5, 0.0, -1.0], atol=1e-9)
    logits = torch.log(target.float().clamp_min(1e-30))
    np.testing.assert_allclose(expected_value(logits, support).numpy(), decoded.numpy(), atol=1e-5)


def test_nstep_advantage_bootstraps_inside_and_truncates_at_episode_end() -> None:
    steps = make_steps([blank_episode("a", 6, True), blank_episode("a", 3, False)])
    v = np.array([-0.9, -0.7, -0.6, -0.5, -0.2, -0.1, -0.3, -0.4, -0.5])
    adv = nstep_advantages(steps, v, n=2, reward_config=RewardConfig(c_fail=3))
    Z = 6.0 + 3.0  # L + C_fail
    expected = [
        -2 / Z + v[2] - v[0],
        -2 / Z + v[3] - v[1],
        -2 / Z + v[4] - v[2],
        -2 / Z + v[5] - v[3],
        -1 / Z - v[4],  # truncated: return to the end, R_4 = -1
        0.0 - v[5],
        -2 / Z + v[8] - v[6],  # never bootstraps across into another episode: 6 + 2 = 8 is inside
        (-1 - 3) / Z - v[7],  # truncated: R = -1 - C_fail
        -3 / Z - v[8],
    ]
    np.testing.assert_allclose(adv, expected, atol=1e-6)


def test_nstep_with_long_lookahead_equals_full_episode_advantage() -> None:
    steps = make_steps([blank_episode("a", 6, True), blank_episode("b", 9, False)])
    v = np.linspace(-0.9, -0.1, len(steps))
    np.testing.assert_allclose(nstep_advantages(steps, v, n=50), episode_advantages(steps, v), atol=1e-6)
    np.testing.assert_allclose(episode_advantages(steps, v), normalised_returns(steps) - v, atol=1e-6)


def test_nstep_rejects_bad_values() -> None:
    steps = make_steps([blank_episode("a", 3, True)])
    with pytest.raises(ValueError, match="episode ep0000: column 'value' at t=1"):
        nstep_advantages(steps, np.array([0.0, np.nan, 0.0]))
    with pytest.raises(ValueError, match="shape"):
        nstep_advantages(steps, np.zeros(2))


@pytest.mark.parametrize("n", [1, 7, 10, 37, 101, 1000])
@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.4, 0.5])
def test_threshold_hits_target_fraction_within_one_sample(n: int, fraction: float) -> None:
    adv = np.random.default_rng(n).normal(size=n)
    eps = threshold_for_fraction(adv, fraction)
    assert abs(int((adv > eps).sum()) - fraction * n) <= 1


def test_task_thresholds_are_per_task_with_overrides() -> None:
    rng = np.random.default_rng(0)
    adv = np.concatenate([rng.normal(0, 1, 200), rng.normal(5, 0.1, 50)])
    tasks = np.array(["easy"] * 200 + ["hard"] * 50)
    out = task_thresholds(adv, tasks, positive_fraction=0.3, overrides={"hard": 0.1})
    assert out["easy"].target_fraction == 0.3 and out["hard"].target_fraction == 0.1
    assert int((adv[:200] > out["easy"].threshold).sum()) == 60
    assert int((adv[200:] > out["hard"].threshold).sum()) == 5
    assert out["easy"].realised_fraction == pytest.approx(0.3)
    # one global percentile would have labelled every "hard" step positive and few "easy" ones.
    assert out["hard"].threshold > 4.0 > out["easy"].threshold
    with pytest.raises(ValueError, match="no steps"):
        task_thresholds(adv, tasks, overrides={"missing": 0.2})


def test_indicators_force_corrections_true_and_sft_mode_all_true() -> None:
    adv = np.array([0.5, -0.5, -0.5, 0.5, -0.5, 0.2])
    tasks = np.array(["a", "a", "a", "b", "b", "b"])
    corr = np.array([False, True, False, False, True, False])
    thresholds = {"a": 0.0, "b": 0.3}
    labels = indicators(adv, tasks, thresholds, corr)
    np.testing.assert_array_equal(labels, [True, True, False, True, True, False])
    assert positive_fraction_per_task(labels, tasks) == {"a": pytest.approx(2 / 3), "b": pytest.approx(2 / 3)}
    assert indicators(None, tasks, None, corr, mode="sft").all()
    with pytest.raises(ValueError, match="no threshold for task 'b'"):
        indicators(adv, tasks, {"a": 0.0}, corr)


def test_indicator_dropout_rate() -> None:
    tokens = torch.full((200_000,), INDICATOR_POSITIVE)
    tokens[::2] = INDICATOR_NEGATIVE
    dropped = drop_indicators(tokens, 0.3, torch.Generator().manual_seed(0))
    assert (dropped == INDICATOR_DROPPED).float().mean().item() == pytest.approx(0.3, abs=0.005)
    kept = dropped != INDICATOR_DROPPED
    assert torch.equal(dropped[kept], tokens[kept])
    assert (drop_indicators(tokens, 0.0) == tokens).all()


def _manual_euler(net: FlowMatchingPolicy, obs: torch.Tensor, prompts: list[str], noise: torch.Tensor, beta):
    ctx = net.context(obs, prompts)
    x = noise.clone()
    steps = net.config.flow_steps
    pos = torch.full((len(obs),), INDICATOR_POSITIVE)
    drop = torch.full((len(obs),), INDICATOR_DROPPED)
    for k in range(steps):
        tau = torch.full((len(obs),), k / steps)
        v_c = net.velocity(ctx, pos, tau, x)
        v = (
            v_c
            if beta is None
            else net.velocity(ctx, drop, tau, x) + beta * (v_c - net.velocity(ctx, drop, tau, x))
        )
        x = x + v / steps
    return net.action_norm.inverse(x)


@torch.no_grad()
def test_beta_one_is_plain_conditional_sampling_and_cfg_follows_the_formula() -> None:
    torch.manual_seed(0)
    net = FlowMatchingPolicy(
        FlowPolicyConfig(obs_dim=5, action_dim=3, horizon=4, hidden=32, flow_steps=5)
    ).eval()
    net.action_norm.std.fill_(2.0)
    obs = torch.randn(6, 5)
    prompts = ["open the drawer"] * 6
    noise = torch.randn(6, 4, 3)
    conditional = _manual_euler(net, obs, prompts, noise, beta=None)
    assert torch.allclose(net.sample(obs, prompts, beta=1.0, noise=noise), conditional, atol=1e-6)
    guided = _manual_euler(net, obs, prompts, noise, beta=2.0)
    assert torch.allclose(net.sample(obs, prompts, beta=2.0, noise=noise), guided, atol=1e-5)
    assert not torch.allclose(guided, conditional, atol=1e-3)
    # an unconditioned (SFT-style) network ignores beta and the indicator.
    net.config = FlowPolicyConfig(**{**net.config.to_dict(), "conditioned": False})
    a = net.sample(obs, prompts, beta=2.0, noise=noise)
    b = net.sample(obs, prompts, beta=1.0, indicator=None, noise=noise)
    assert torch.allclose(a, b)


def test_awr_weights_exp_clipped_and_normalised() -> None:
    adv = np.array([-1.0, 0.0, 1.0, 10.0])
    w = awr_weights(adv, temperature=1.0, max_weight=20.0)
    raw = np.minimum(np.exp(adv - adv.mean()), 20.0)
    np.testing.assert_allclose(w, raw / raw.mean(), rtol=1e-6)
    assert w.mean() == pytest.approx(1.0)
    assert w[3] / w[2] == pytest.approx(20.0 / np.exp(1.0 - 2.5), rel=1e-5)


def test_ppo_is_the_spo_objective_with_a_trust_region_penalty() -> None:
    loss_ref = torch.tensor([1.0, 1.0, 1.0])
    loss_new = torch.tensor([0.5, 0.5, 1.1])  # ratios e^0.5, e^0.5, e^-0.1
    adv = torch.tensor([1.0, -1.0, 2.0])
    out = spo_flow_objective(loss_new, loss_ref, adv, trust_region=0.01)
    r = np.exp([0.5, 0.5, -0.1])
    a = np.array([1.0, -1.0, 2.0])
    expected = -np.mean(r * a - np.abs(a) / 0.02 * (r - 1) ** 2)
    assert out.item() == pytest.approx(expected, rel=1e-5)
    # per sample the objective peaks at r = 1 + eps * sign(A): the trust region, not a clip.
    ratios = torch.linspace(0.9, 1.1, 2001)
    for sign in (1.0, -1.0):
        values = [
            -spo_flow_objective(-torch.log(x).reshape(1), torch.zeros(1), torch.tensor([sign])).item()
            for x in ratios
        ]
        assert ratios[int(np.argmax(values))].item() == pytest.approx(1 + 0.01 * sign, abs=1e-4)
    with pytest.raises(ValueError, match="trust region"):
        spo_flow_objective(loss_new, loss_ref, adv, trust_region=0.0)


def test_prompt_encoder_is_deterministic_and_handles_unseen_prompts() -> None:
    torch.manual_seed(0)
    enc = HashedPromptEncoder(dim=64)
    a, b, c, d = enc(["pick up the red cup", "pick up the cup", "open the top drawer", ""])
    assert torch.allclose(enc(["pick up the red cup"])[0], a)
    cos = torch.nn.functional.cosine_similarity
    assert cos(a, b, dim=0) > cos(a, c, dim=0) + 0.2
    assert torch.isfinite(d).all()


def _kinds_episode(task: str, length: int, kind: str, iteration: int, corrected: slice | None = None):
    episode = blank_episode(task, length, True)
    episode.kind = kind
    if corrected is not None:
        episode.is_correction = np.zeros(length, bool)
        episode.is_correction[corrected] = True
    return episode, iteration


def _steps_with_iterations(specs) -> object:
    steps = make_steps([episode for episode, _ in specs])
    iterations = [iteration for _, iteration in specs]
    return dataclasses.replace(
        steps, episodes=steps.episodes.with_columns(pl.Series("iteration", iterations))
    )


def test_finetuning_threshold_population_is_the_iterations_own_autonomous_steps() -> None:
    steps = _steps_with_iterations(
        [
            _kinds_episode("a", 10, "demo", 0),
            _kinds_episode("a", 10, "autonomous", 1),
            _kinds_episode("a", 10, "intervention", 2, corrected=slice(6, 10)),
            _kinds_episode("a", 10, "autonomous", 2),
        ]
    )
    kinds = step_kinds(steps)
    assert list(kinds[:10]) == ["demo"] * 10 and list(kinds[26:30]) == ["correction"] * 4
    mask, names = threshold_population(steps, 2)
    assert names == {"a": "autonomous steps of iteration 2"}
    # iteration 2's policy actions only: the intervention episode's first 6 steps and the rollout.
    np.testing.assert_array_equal(np.flatnonzero(mask), np.r_[20:26, 30:40])
    # demos have high advantages, rollouts low ones: the 40% target holds on the rollouts, not overall.
    adv = np.where(kinds == "demo", 1.0, 0.0) + np.linspace(0, 0.1, len(steps))
    th = task_thresholds(adv, steps.per_step("task"), 0.4, population=mask, population_names=names)["a"]
    assert th.n_steps == 16 and th.realised_fraction == pytest.approx(6 / 16)
    assert np.mean(adv[mask] > th.threshold) == pytest.approx(th.realised_fraction)
    labels = indicators(adv, steps.per_step("task"), {"a": th}, steps.is_correction)
    shares = positive_share_per_kind(labels, kinds, steps.per_step("task"))["a"]
    assert shares["demo"] == 1.0 and shares["correction"] == 1.0
    assert shares["autonomous"] == pytest.approx(float(labels[kinds == "autonomous"].mean()))


def test_threshold_population_falls_back_and_says_so() -> None:
    fleet_only = _steps_with_iterations([_kinds_episode("f", 5, "demo", 3)])
    mask, names = threshold_population(fleet_only, 3)
    assert mask.all() and names["f"] == "non-correction steps of iteration 3 (it has no autonomous steps)"
    older = _steps_with_iterations([_kinds_episode("g", 5, "autonomous", 1)])
    mask, names = threshold_population(older, 2)
    assert mask.all() and names["g"] == "all non-correction steps up to iteration 2"
    _, names = threshold_population(older, -1)
    assert names["g"] == "all non-correction steps up to iteration -1"
    demos = _steps_with_iterations([_kinds_episode("h", 5, "demo", 0)])
    assert threshold_population(demos, -1)[1] == {"h": "demonstration steps"}
    with pytest.raises(ValueError, match="task 'h': the threshold population"):
        task_thresholds(np.zeros(5), demos.per_step("task"), 0.3, population=np.zeros(5, bool))


def test_method_registry_keeps_the_stored_names_and_every_reader_agrees() -> None:
    """Checkpoints, derived tables and the ledger store these names: they must never change."""
    from recap_core.extraction import BASELINES, INDICATOR_MODES, LEDGER_METHODS, REPORT_ORDER, Method
    from recap_core.ledger import LEDGER_SCHEMA
    from recap_core.training.policy_training import _OBJECTIVES

    assert [m.value for m in Method] == ["recap", "sft", "awr", "ppo"]
    assert BASELINES == ("sft", "awr", "ppo") and INDICATOR_MODES == ("recap", "sft")
    assert REPORT_ORDER == ("recap", "recap_beta1", "sft", "awr", "ppo")
    assert set(_OBJECTIVES) == set(Method)
    allowed = LEDGER_SCHEMA.columns["method"].checks[0].statistics["allowed_values"]
    assert list(allowed) == list(LEDGER_METHODS) == [*REPORT_ORDER, "expert"]
    with pytest.raises(ValueError, match="indicator mode must be one of \\('recap', 'sft'\\), got 'awr'"):
        indicators(None, np.array(["a"]), None, np.array([False]), mode="awr")
