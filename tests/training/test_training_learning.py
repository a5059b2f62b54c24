"""Learning tests: tiny, seeded, and able to fail.

- the value function ranks held-out states of successful Meta-World episodes above failed ones;
- the flow policy reproduces a bimodal action distribution that a mean-squared regressor cannot;
- on data mixing good and bad actions, the positive-conditioned policy picks the good mode far more
  often than the unconditioned one, and more often than AWR.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from steps_helpers import ToyEpisode, make_steps

from recap_core.checkpoints import load_policy, predict_values
from recap_core.models import FlowMatchingPolicy, FlowPolicyConfig, ValueNetConfig
from recap_core.rules import indicators, nstep_advantages, positive_fraction_per_task, task_thresholds
from recap_core.steps import StepArrays
from recap_core.training import PolicyTrainConfig, ValueTrainConfig, train_policy, train_value_function

warnings.filterwarnings("ignore", message=r"Constant\(s\) may be too high")
REACH_PROMPT = "reach the goal position with the gripper"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(random positive > random negative), ties counted half."""
    greater = (positive[:, None] > negative[None, :]).mean()
    ties = (positive[:, None] == negative[None, :]).mean()
    return float(greater + 0.5 * ties)


def _metaworld_reach_episodes(n: int, seed: int, max_steps: int = 80) -> list[ToyEpisode]:
    """Real reach-v3 episodes: even ones by the scripted expert (succeed), odd ones by random actions."""
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE
    from metaworld.policies import ENV_POLICY_MAP

    env = ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE["reach-v3-goal-observable"](seed=seed)
    env.max_path_length = 10**9
    expert = ENV_POLICY_MAP["reach-v3"]()
    rng = np.random.default_rng(seed)
    space = env._random_reset_space
    episodes = []
    for i in range(n):
        # reach-v3 resamples until object and goal are 0.15 apart; a frozen placement must satisfy it.
        while True:
            placement = rng.uniform(space.low, space.high)
            if np.linalg.norm(placement[:2] - placement[3:5]) >= 0.15:
                break
        env._last_rand_vec = placement
        env._freeze_rand_vec = True
        obs, _ = env.reset()
        observations, actions, success = [], [], False
        for _ in range(max_steps):
            action = expert.get_action(obs) if i % 2 == 0 else rng.uniform(-1, 1, 4)
            action = np.clip(action, -1, 1)
            observations.append(obs)
            actions.append(action)
            obs, _, _, _, info = env.step(action)
            if info["success"]:
                success = True
                break
        episodes.append(
            ToyEpisode("reach-v3", success, np.array(observations), np.array(actions), prompt=REACH_PROMPT)
        )
    return episodes


@pytest.fixture(scope="module")
def reach() -> tuple[StepArrays, StepArrays]:
    train = make_steps(_metaworld_reach_episodes(30, seed=0))
    held_out = make_steps(_metaworld_reach_episodes(10, seed=1))
    assert train.episodes["success"].sum() >= 10 and (~train.episodes["success"]).sum() >= 10
    return train, held_out


def test_value_ranks_heldout_success_states_above_failures(reach, tmp_path: Path) -> None:
    train, held_out = reach
    config = ValueTrainConfig(
        epochs=25, lr=1e-3, patience=6, architecture=ValueNetConfig(hidden=128, depth=2)
    )
    vf, history = train_value_function(train, config, out_dir=tmp_path / "v")
    assert history.val_loss[history.best_epoch] < history.val_loss[0]
    values = predict_values(vf, held_out)
    success = held_out.per_step("success").astype(bool)
    assert success.any() and (~success).any()
    assert values[success].mean() > values[~success].mean() + 0.2
    assert _auc(values[success], values[~success]) > 0.85


def test_recap_chain_end_to_end_on_metaworld(reach, tmp_path: Path) -> None:
    """V -> N-step advantages -> per-task thresholds -> indicators -> RECAP policy -> ChunkPolicy."""
    train, _ = reach
    small = {"hidden": 64, "depth": 2}
    value_config = ValueTrainConfig(epochs=3, architecture=ValueNetConfig(**small))
    vf, _ = train_value_function(train, value_config, out_dir=tmp_path / "v")
    adv = nstep_advantages(train, predict_values(vf, train), n=50, reward_config=vf.reward_config)
    tasks = train.per_step("task")
    thresholds = task_thresholds(adv, tasks, positive_fraction=0.4)
    assert abs(thresholds["reach-v3"].realised_fraction * len(train) - 0.4 * len(train)) <= 1
    labels = indicators(adv, tasks, thresholds, train.is_correction)
    assert positive_fraction_per_task(labels, tasks)["reach-v3"] == pytest.approx(0.4, abs=1.5 / len(train))
    _, history = train_policy(
        train,
        labels,
        PolicyTrainConfig(epochs=3, architecture=FlowPolicyConfig(**small)),
        out_dir=tmp_path / "pi",
    )
    assert len(history.train_loss) == 3
    policy = load_policy(tmp_path / "pi", beta=1.5)
    chunks = policy.act(train.observations[:16], [REACH_PROMPT] * 16)
    assert chunks.shape == (16, policy.horizon, 4) and np.isfinite(chunks).all()


def _sample_means(net: FlowMatchingPolicy, n: int, obs_dim: int, prompt: str, **kwargs) -> np.ndarray:
    obs = torch.from_numpy(np.random.default_rng(7).normal(size=(n, obs_dim)).astype(np.float32))
    chunks = net.sample(obs, [prompt] * n, generator=torch.Generator().manual_seed(7), **kwargs)
    return chunks[:, :, 0].mean(dim=1).numpy()


def test_flow_policy_reproduces_bimodal_actions_mse_cannot() -> None:
    rng = np.random.default_rng(0)
    episodes = []
    for _ in range(160):
        sign = 1.0 if rng.random() < 0.5 else -1.0
        actions = np.full((8, 1), sign) + rng.normal(0, 0.03, (8, 1))
        episodes.append(
            ToyEpisode("fork", True, rng.normal(size=(8, 3)), actions, prompt="go around the post")
        )
    steps = make_steps(episodes)
    config = PolicyTrainConfig(
        epochs=12,
        steps_per_epoch=40,
        batch_size=128,
        lr=1e-3,
        architecture=FlowPolicyConfig(hidden=64, depth=2, horizon=4),
    )
    flow, _ = train_policy(steps, None, config, method="sft")
    means = _sample_means(flow.net, 400, 3, "go around the post")
    near_mode = np.minimum(np.abs(means - 1.0), np.abs(means + 1.0)) < 0.3
    assert near_mode.mean() > 0.85
    assert 0.25 < (means > 0).mean() < 0.75

    # the same data regressed with a squared loss collapses to the average of the modes.
    torch.manual_seed(0)
    regressor = torch.nn.Sequential(torch.nn.Linear(3, 64), torch.nn.SiLU(), torch.nn.Linear(64, 4))
    optimiser = torch.optim.Adam(regressor.parameters(), lr=1e-3)
    obs = torch.from_numpy(steps.observations)
    target = torch.from_numpy(steps.actions[:, 0]).repeat(4, 1).T
    for _ in range(300):
        loss = ((regressor(obs) - target) ** 2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        predicted = regressor(torch.from_numpy(rng.normal(size=(400, 3)).astype(np.float32))).mean(1).numpy()
    mse_near_mode = np.minimum(np.abs(predicted - 1.0), np.abs(predicted + 1.0)) < 0.3
    assert mse_near_mode.mean() < 0.2
    assert near_mode.mean() > mse_near_mode.mean() + 0.6


def test_positive_conditioning_picks_good_mode_more_than_unconditioned_and_awr() -> None:
    rng = np.random.default_rng(0)
    episodes, advantages = [], []
    for _ in range(200):
        good = rng.random() < 0.3
        actions = np.full((10, 1), 0.8 if good else -0.8) + rng.normal(0, 0.05, (10, 1))
        episodes.append(ToyEpisode("toy", good, rng.normal(size=(10, 3)), actions, prompt="place the block"))
        advantages.append(np.full(10, 0.1 if good else -0.1) + rng.normal(0, 0.05, 10))
    steps = make_steps(episodes)
    adv = np.concatenate(advantages).astype(np.float32)
    tasks = steps.per_step("task")
    labels = indicators(adv, tasks, task_thresholds(adv, tasks, 0.3), steps.is_correction)
    config = PolicyTrainConfig(
        epochs=15,
        batch_size=128,
        lr=1e-3,
        seed=0,
        architecture=FlowPolicyConfig(hidden=64, depth=2, horizon=4),
    )
    recap, _ = train_policy(steps, labels, config, method="recap")
    awr, _ = train_policy(steps, None, config, method="awr", advantages=adv)

    def good_share(net: FlowMatchingPolicy, **kwargs) -> float:
        return float((_sample_means(net, 400, 3, "place the block", **kwargs) > 0.4).mean())

    positive = good_share(recap.net, beta=1.0)
    guided = good_share(recap.net, beta=2.0)
    unconditioned = good_share(recap.net, indicator=None)
    awr_share = good_share(awr.net)
    assert positive > 0.85
    assert guided >= positive - 0.02
    assert unconditioned < 0.45
    assert positive > unconditioned + 0.4
    assert positive > awr_share + 0.1
