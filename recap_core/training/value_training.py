"""Training, labelling with, saving and loading the distributional value function."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from recap_core.method.rewards import RewardConfig, episode_progress, normalised_returns, task_max_lengths
from recap_core.models.value import DistributionalValueFunction, ValueNetConfig
from recap_core.steps import StepArrays, float_tensor
from recap_core.training.checkpoints import (
    CheckpointRef,
    checkpoint_sha256,
    load_weights,
    read_checkpoint_config,
    save_checkpoint,
)
from recap_core.training.config import TrainingHistory, ValueTrainConfig, require_matching_architecture
from recap_core.training.distributed import SINGLE_PROCESS, Distributed
from recap_core.training.fit import fit
from recap_core.training.images import batch_images, step_images
from recap_core.training.pretrained import RecapHubMixin
from recap_core.training.sources import Shard, TrainingData, in_memory_data, shards_of
from recap_core.training.statistics import fit_normalisers


@dataclass
class ValueFunction(RecapHubMixin):
    """A value network together with the reward constants that define its units.

    ``ValueFunction.from_pretrained("org/repo")`` / ``save_pretrained`` / ``push_to_hub`` follow the
    Hugging Face conventions (see recap_core/training/pretrained.py).
    """

    net: DistributionalValueFunction
    reward_config: RewardConfig
    checkpoint: CheckpointRef | None = None
    KIND: ClassVar[str] = "value"

    @classmethod
    def _load_checkpoint(cls, folder: Path) -> ValueFunction:
        return load_value_function(folder)

    def _write_checkpoint(self, directory: Path) -> CheckpointRef:
        return save_value_function(self, directory)

    def predict(self, steps: StepArrays, batch_size: int = 8192) -> np.ndarray:
        return predict_values(self, steps, batch_size)


def _reward_to_dict(reward: RewardConfig) -> dict:
    return {"c_fail": reward.c_fail, "task_max_length": dict(reward.task_max_length)}


def _reward_from_dict(data: dict) -> RewardConfig:
    """The stored reward (checkpoints written before the value support moved to the architecture also
    carry its ``value_min`` / ``value_max`` here: the same numbers as their architecture's)."""
    return RewardConfig(c_fail=data["c_fail"], task_max_length=dict(data["task_max_length"]))


def _check_obs(steps: StepArrays, obs_dim: int) -> None:
    if steps.observations.ndim != 2 or steps.observations.shape[1] != obs_dim:
        raise ValueError(
            f"observations have shape {steps.observations.shape}; the model expects (N, {obs_dim})"
        )
    steps.require_finite(steps.observations, "observation")


def train_value_function(
    steps: StepArrays | TrainingData,
    config: ValueTrainConfig | None = None,
    init_from: str | Path | None = None,
    out_dir: str | Path | None = None,
    distributed: Distributed = SINGLE_PROCESS,
) -> tuple[ValueFunction, TrainingHistory]:
    """Fit p(V | o, task) by cross-entropy on two-hot encoded normalised Monte-Carlo returns.

    ``steps``: the steps in memory, or a ``TrainingData`` (streamed shards, or this rank's part under
    torchrun). ``init_from``: a value checkpoint directory to finetune from; its architecture,
    normalisation statistics and per-task normalisers L are kept (tasks it has not seen get theirs from
    the data) and it is recorded as the parent. ``out_dir``: where to save the checkpoint (None: not
    saved; under torchrun only rank 0 saves).
    """
    config = config or ValueTrainConfig()
    torch.manual_seed(config.seed)  # network initialisation is part of the seeded run
    data = (
        steps
        if isinstance(steps, TrainingData)
        else in_memory_data(steps, {}, config.val_fraction, config.seed)
    )
    if data.memory is not None:
        _check_obs(data.memory, data.memory.observations.shape[1])
    parent: CheckpointRef | None = None
    reward = config.reward
    if init_from is not None:
        parent_vf = load_value_function(init_from)
        net = parent_vf.net
        parent = parent_vf.checkpoint
        inherited = {**parent_vf.reward_config.task_max_length, **reward.task_max_length}
        reward = dataclasses.replace(reward, task_max_length=inherited)
        if data.obs_dim != net.config.obs_dim:
            raise ValueError(
                f"observations have {data.obs_dim} features; the model expects (N, {net.config.obs_dim})"
            )
        require_matching_architecture(config.architecture, net.config, init_from)
    else:
        net = DistributionalValueFunction(config.architecture.sized(data.obs_dim))
    observed = task_max_lengths(data.episodes, RewardConfig())
    merged = {task: max(observed.get(task, 0), reward.task_max_length.get(task, 0)) for task in observed}
    explicit = config.reward.task_max_length
    merged.update({task: explicit[task] for task in explicit})
    reward = dataclasses.replace(reward, task_max_length={**reward.task_max_length, **merged})
    if parent is None:
        fit_normalisers(data, [(net.obs_norm, lambda s: s.observations)], distributed)

    def make_loss(shard: Shard):
        part = shard.steps
        if data.memory is None:
            _check_obs(part, data.obs_dim)
        targets = torch.from_numpy(normalised_returns(part, reward, net.config.support))
        progress = torch.from_numpy(episode_progress(part, reward))
        observations = float_tensor(part.observations)
        prompts = np.asarray(part.per_step("prompt"), dtype=object)
        images = step_images(part, net.config.images)

        def loss_fn(idx: np.ndarray, _generator: torch.Generator, _training: bool) -> torch.Tensor:
            index = torch.from_numpy(idx)
            return net.loss(
                observations[index],
                prompts[idx].tolist(),
                targets[index],
                progress[index],
                batch_images(images, index),
            )

        return loss_fn

    history = fit(net, make_loss, data, config, desc="value function", distributed=distributed)
    vf = ValueFunction(net, reward)
    if history.n_val_steps:
        history.extra["val_mae"] = _held_out_mae(vf, data, distributed)
    if out_dir is not None and distributed.is_main:
        vf.checkpoint = save_value_function(vf, out_dir, config, history, parent)
    return vf, history


def _held_out_mae(vf: ValueFunction, data: TrainingData, distributed: Distributed) -> float:
    """Mean |V(o) - target| over the held-out steps of every rank, in normalised units."""
    total = np.zeros(2)
    for shard in shards_of(data.val):
        if len(shard.index):
            values = predict_values(vf, shard.steps, index=shard.index)
            targets = normalised_returns(shard.steps, vf.reward_config, vf.net.config.support)[shard.index]
            total += (float(np.sum(np.abs(values - targets))), len(shard.index))
    error, count = distributed.sum(total)
    return float(error / count) if count else float("nan")


@torch.inference_mode()
def predict_values(
    vf: ValueFunction, steps: StepArrays, batch_size: int = 8192, index: np.ndarray | None = None
) -> np.ndarray:
    """V(o_t) for every step (or the steps at ``index``), float32, in normalised units."""
    _check_obs(steps, vf.net.config.obs_dim)
    vf.net.eval()
    idx = np.arange(len(steps)) if index is None else np.asarray(index)
    prompts = steps.episodes["prompt"].to_numpy()
    progress = torch.from_numpy(episode_progress(steps, vf.reward_config))
    images = step_images(steps, vf.net.config.images)
    out = np.empty(len(idx), dtype=np.float32)
    for start in range(0, len(idx), batch_size):
        part = idx[start : start + batch_size]
        obs = torch.from_numpy(np.ascontiguousarray(steps.observations[part], dtype=np.float32))
        prompt_list = prompts[steps.episode_index[part]].tolist()
        rows = torch.from_numpy(part)
        out[start : start + len(part)] = vf.net(
            obs, prompt_list, progress[rows], batch_images(images, rows)
        ).numpy()
    return out


def save_value_function(
    vf: ValueFunction,
    directory: str | Path,
    config: ValueTrainConfig | None = None,
    history: TrainingHistory | None = None,
    parent: CheckpointRef | None = None,
) -> CheckpointRef:
    norm = vf.net.obs_norm
    return save_checkpoint(
        vf.net,
        directory,
        kind="value",
        architecture=vf.net.config.to_dict(),
        normalisation={"obs_mean": norm.mean.tolist(), "obs_std": norm.std.tolist()},
        method="distributional-mc",
        training={
            "config": config.to_dict() if config else None,
            "history": history.to_dict() if history else None,
        },
        parent=parent,
        extra={"reward": _reward_to_dict(vf.reward_config)},
    )


def load_value_function(path: str | Path) -> ValueFunction:
    """Rebuild a value function from its checkpoint directory (weights, normalisers, reward units)."""
    config = read_checkpoint_config(path, kind="value")
    net = DistributionalValueFunction(ValueNetConfig.from_dict(config["architecture"]), load_pretrained=False)
    load_weights(net, path)
    net.eval()
    ref = CheckpointRef(str(Path(path).resolve()), checkpoint_sha256(path))
    return ValueFunction(net, _reward_from_dict(config["reward"]), ref)
