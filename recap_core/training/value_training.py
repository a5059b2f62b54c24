"""Training, labelling with, saving and loading the distributional value function."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from recap_core.checkpoints.format import (
    CheckpointRef,
)
from recap_core.checkpoints.value import (
    ValueFunction,
    check_observations,
    load_value_function,
    predict_values,
    save_value_function,
)
from recap_core.models.frames import batch_images, step_images
from recap_core.models.value import DistributionalValueFunction
from recap_core.rules.rewards import RewardConfig, episode_progress, normalised_returns, task_max_lengths
from recap_core.steps import StepArrays, float_tensor
from recap_core.training.config import TrainingHistory, ValueTrainConfig, require_matching_architecture
from recap_core.training.device import CPU, Placement
from recap_core.training.distributed import SINGLE_PROCESS, Distributed
from recap_core.training.fit import fit
from recap_core.training.sources import Shard, TrainingData, in_memory_data, shards_of
from recap_core.training.statistics import fit_normalisers


def train_value_function(
    steps: StepArrays | TrainingData,
    config: ValueTrainConfig | None = None,
    init_from: str | Path | None = None,
    out_dir: str | Path | None = None,
    distributed: Distributed = SINGLE_PROCESS,
    placement: Placement = CPU,
) -> tuple[ValueFunction, TrainingHistory]:
    """Fit p(V | o, task) by cross-entropy on two-hot encoded normalised Monte-Carlo returns.

    ``steps``: the steps in memory, or a ``TrainingData`` (streamed shards, or this rank's part under
    torchrun). ``init_from``: a value checkpoint directory to finetune from; its architecture,
    normalisation statistics and per-task normalisers L are kept (tasks it has not seen get theirs from
    the data) and it is recorded as the parent. ``out_dir``: where to save the checkpoint (None: not
    saved; under torchrun only rank 0 saves). ``placement``: the device and precision it trains at (the
    CPU in float32 unless a benchmark asks otherwise).
    """
    config = config or ValueTrainConfig()
    torch.manual_seed(config.seed)  # network initialisation is part of the seeded run
    data = (
        steps
        if isinstance(steps, TrainingData)
        else in_memory_data(steps, {}, config.val_fraction, config.seed)
    )
    if data.memory is not None:
        check_observations(data.memory, data.memory.observations.shape[1])
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
            check_observations(part, data.obs_dim)
        put = placement.put
        targets = put(torch.from_numpy(normalised_returns(part, reward, net.config.support)))
        progress = put(torch.from_numpy(episode_progress(part, reward)))
        observations = put(float_tensor(part.observations))
        prompts = np.asarray(part.per_step("prompt"), dtype=object)
        images = {camera: put(frames) for camera, frames in step_images(part, net.config.images).items()}

        def loss_fn(idx: np.ndarray, _generator: torch.Generator, _training: bool) -> torch.Tensor:
            index = put(torch.from_numpy(idx))
            return net.loss(
                observations[index],
                prompts[idx].tolist(),
                targets[index],
                progress[index],
                batch_images(images, index),
            )

        return loss_fn

    history = fit(
        net, make_loss, data, config, "value function", distributed=distributed, placement=placement
    )
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
