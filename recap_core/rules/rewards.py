"""Rewards and Monte-Carlo returns (Eq. 5 of the pi*0.6 paper), normalised per task into (-1, 0].

Indexing: an episode of length T has steps t = 0 .. T-1 (the step table's ``t``). The paper's last step
"t = T" is our t = T-1, so

    r_t     = -1            for t < T-1
    r_{T-1} = 0             on success
    r_{T-1} = -C_fail       on failure

and R_t = sum_{t' >= t} r_t' = -(T-1-t) on success, -(T-1-t) - C_fail on failure. A value therefore
reads as "minus the number of steps still needed". The paper normalises values per task into (-1, 0); we
divide by Z = L + C_fail, where L is the task's maximum episode length. The most negative return an
episode of length <= L can have is -(L-1) - C_fail > -Z, so EVERY return, failures included, lies inside
the value support without clipping. That matters: clipping (dividing by L alone, with C_fail = L) maps
every state of a failure onto -1 while the N-step advantage adds -N/L of rewards before bootstrapping, so
a failure's last N steps got the same zero advantage as a success's. With Z the identity
R_t = sum_{t'<t+N} r_t' + R_{t+N} holds in normalised units too, and a value function equal to each
step's own return gives zero advantage everywhere. C_fail defaults to L, so successes occupy (-1/2, 0]
and failures (-1, -1/2].
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from recap_core.steps import StepArrays

VALUE_SUPPORT = (-1.0, 0.0)
"""[value_min, value_max] of the default value network: every normalised return lies inside."""


@dataclass(frozen=True)
class RewardConfig:
    """Constants of the reward.

    ``c_fail``: terminal penalty of a failed episode, in steps; None = the task's max length L.
    ``task_max_length``: L per task; tasks missing from it use the longest episode observed for the
    task. Returns are divided by L + C_fail, which keeps every return inside (-1, 0] unclipped.
    """

    c_fail: float | None = None
    task_max_length: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.c_fail is not None and self.c_fail < 0:
            raise ValueError(f"RewardConfig.c_fail must be >= 0, got {self.c_fail}")
        for task, length in self.task_max_length.items():
            if length <= 0:
                raise ValueError(f"RewardConfig.task_max_length[{task!r}] must be > 0, got {length}")


def task_max_lengths(steps: StepArrays | pl.DataFrame, config: RewardConfig | None = None) -> dict[str, int]:
    """The normaliser L per task: the configured value, else the longest episode of that task in ``steps``
    (a ``StepArrays`` or its episodes frame: streamed training knows every episode before any step)."""
    config = config or RewardConfig()
    episodes = steps if isinstance(steps, pl.DataFrame) else steps.episodes
    out: dict[str, int] = {}
    for task, length in zip(episodes["task"].to_list(), episodes["length"].to_list(), strict=True):
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


def _per_step(steps: StepArrays, per_task: Mapping[str, float]) -> np.ndarray:
    """A per-task constant broadcast to every step (float64)."""
    per_episode = np.array([per_task[task] for task in steps.episodes["task"].to_list()], dtype=np.float64)
    return per_episode[steps.episode_index]


def _per_step_c_fail(steps: StepArrays, config: RewardConfig, max_len: Mapping[str, int]) -> np.ndarray:
    if config.c_fail is not None:
        return np.full(len(steps), float(config.c_fail))
    return _per_step(steps, max_len)


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


def episode_progress(steps: StepArrays, config: RewardConfig | None = None) -> np.ndarray:
    """t / L per step (float32, in [0, 1)): how much of the task's time limit has passed.

    A failure's return depends on the steps left until the time-out; a value function that sees this
    can predict it (see recap_core.models.value).
    """
    return (steps.t / _per_step(steps, task_max_lengths(steps, config))).astype(np.float32)


def task_normalisers(steps: StepArrays, config: RewardConfig | None = None) -> dict[str, float]:
    """Z = L + C_fail per task: the divisor that maps every raw return into (-1, 0] without clipping."""
    config = config or RewardConfig()
    max_len = task_max_lengths(steps, config)
    return {
        task: float(length) + (float(length) if config.c_fail is None else float(config.c_fail))
        for task, length in max_len.items()
    }


def normaliser_per_step(steps: StepArrays, config: RewardConfig | None = None) -> np.ndarray:
    """Z = L + C_fail of each step's task, broadcast to steps: divide raw rewards/returns by it."""
    return _per_step(steps, task_normalisers(steps, config))


def normalised_returns(
    steps: StepArrays, config: RewardConfig | None = None, support: tuple[float, float] = VALUE_SUPPORT
) -> np.ndarray:
    """R_t / Z_task (float32): the value targets, inside the support by construction (never clipped).

    Fails, naming the episode, if a return falls outside ``support`` (the value network's
    [value_min, value_max]): that can only happen with a support narrower than (-1, 0], and silently
    clipping would break the N-step identity.
    """
    config = config or RewardConfig()
    value_min, value_max = support
    returns = raw_returns(steps, config) / normaliser_per_step(steps, config)
    outside = (returns < value_min) | (returns > value_max)
    if np.any(outside):
        bad = int(np.argmax(outside))
        episode_id = steps.episodes["episode_id"][int(steps.episode_index[bad])]
        raise ValueError(
            f"episode {episode_id}: normalised return {returns[bad]:.4f} at t={steps.t[bad]} lies outside "
            f"the value support [{value_min}, {value_max}]"
        )
    return returns.astype(np.float32)
