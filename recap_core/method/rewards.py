"""Rewards and Monte-Carlo returns (Eq. 5 of the pi*0.6 paper), normalised per task into [-1, 0].

Indexing: an episode of length T has steps t = 0 .. T-1 (the step table's ``t``). The paper's last step
"t = T" is our t = T-1, so

    r_t     = -1            for t < T-1
    r_{T-1} = 0             on success
    r_{T-1} = -C_fail       on failure

and R_t = sum_{t' >= t} r_t' = -(T-1-t) on success, -(T-1-t) - C_fail on failure. A value therefore
reads as "minus the number of steps still needed", which is why the paper normalises per task by the
task's maximum episode length L: R_t / L lies in (-1, 0] for successes. C_fail defaults to L, so every
failed state normalises to <= -1 and is clipped onto the value support's lower edge: failures sit at -1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from recap_core.steps import StepArrays


@dataclass(frozen=True)
class RewardConfig:
    """Constants of the reward.

    ``c_fail``: terminal penalty of a failed episode, in steps; None = the task's max length (failures
    normalise to -1). ``task_max_length``: normaliser per task; tasks missing from it use the longest
    episode observed for the task, which keeps every success inside (-1, 0].
    """

    c_fail: float | None = None
    task_max_length: Mapping[str, int] = field(default_factory=dict)
    value_min: float = -1.0
    value_max: float = 0.0

    def __post_init__(self) -> None:
        if self.c_fail is not None and self.c_fail < 0:
            raise ValueError(f"RewardConfig.c_fail must be >= 0, got {self.c_fail}")
        for task, length in self.task_max_length.items():
            if length <= 0:
                raise ValueError(f"RewardConfig.task_max_length[{task!r}] must be > 0, got {length}")


def task_max_lengths(steps: StepArrays, config: RewardConfig | None = None) -> dict[str, int]:
    """The normaliser L per task: the configured value, else the longest episode of that task in ``steps``."""
    config = config or RewardConfig()
    out: dict[str, int] = {}
    for task, length in zip(
        steps.episodes["task"].to_list(), steps.episodes["length"].to_list(), strict=True
    ):
        out[task] = max(out.get(task, 0), int(length))
    for task, length in config.task_max_length.items():
        out[task] = int(length)
    return out


def _validate_lengths(steps: StepArrays, max_len: Mapping[str, int]) -> None:
    ep = steps.episodes
    for episode_id, task, length in zip(
        ep["episode_id"].to_list(), ep["task"].to_list(), ep["length"].to_list(), strict=True
    ):
        if length > max_len[task]:
            raise ValueError(
                f"episode {episode_id}: column 'length' = {length} exceeds task_max_length[{task!r}] = "
                f"{max_len[task]}; its returns would fall outside the value support"
            )


def _per_step_c_fail(steps: StepArrays, config: RewardConfig, max_len: Mapping[str, int]) -> np.ndarray:
    if config.c_fail is not None:
        return np.full(len(steps), float(config.c_fail))
    per_episode = np.array([max_len[task] for task in steps.episodes["task"].to_list()], dtype=np.float64)
    return per_episode[steps.episode_index]


def step_rewards(steps: StepArrays, config: RewardConfig | None = None) -> np.ndarray:
    """r_t per step (float64, raw units: one per step)."""
    config = config or RewardConfig()
    max_len = task_max_lengths(steps, config)
    last = steps.t == (steps.episodes["length"].to_numpy().astype(np.int64)[steps.episode_index] - 1)
    success = steps.per_step("success").astype(bool)
    rewards = np.full(len(steps), -1.0)
    rewards[last & success] = 0.0
    fail_last = last & ~success
    rewards[fail_last] = -_per_step_c_fail(steps, config, max_len)[fail_last]
    return rewards


def raw_returns(steps: StepArrays, config: RewardConfig | None = None) -> np.ndarray:
    """R_t = sum_{t'>=t} r_t' in raw units (closed form; episodes are contiguous)."""
    config = config or RewardConfig()
    max_len = task_max_lengths(steps, config)
    _validate_lengths(steps, max_len)
    lengths = steps.episodes["length"].to_numpy().astype(np.int64)[steps.episode_index]
    remaining = (lengths - 1 - steps.t).astype(np.float64)
    if np.any(remaining < 0):
        bad = int(np.argmax(remaining < 0))
        episode_id = steps.episodes["episode_id"][int(steps.episode_index[bad])]
        raise ValueError(f"episode {episode_id}: column 't' = {steps.t[bad]} is >= its length {lengths[bad]}")
    success = steps.per_step("success").astype(bool)
    return -remaining - np.where(success, 0.0, _per_step_c_fail(steps, config, max_len))


def normaliser_per_step(steps: StepArrays, config: RewardConfig | None = None) -> np.ndarray:
    """L (the task's max length) broadcast to steps: divide raw rewards/returns by it."""
    max_len = task_max_lengths(steps, config)
    per_episode = np.array([max_len[task] for task in steps.episodes["task"].to_list()], dtype=np.float64)
    return per_episode[steps.episode_index]


def normalised_returns(steps: StepArrays, config: RewardConfig | None = None) -> np.ndarray:
    """R_t / L_task clipped to the value support [value_min, value_max] (float32): the value targets."""
    config = config or RewardConfig()
    returns = raw_returns(steps, config) / normaliser_per_step(steps, config)
    return np.clip(returns, config.value_min, config.value_max).astype(np.float32)
