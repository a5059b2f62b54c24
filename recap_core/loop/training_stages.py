"""The training stages of Algorithm 1: V_pre, pi_pre, and per task and iteration V^k and pi^k.

Every finetune starts FROM THE PRE-TRAINED CHECKPOINT, never from iteration k-1: the paper retrains
V^k and pi^k from V_pre and pi_pre on all data so far, which keeps errors of one iteration from
compounding into the next.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np
import polars as pl
import torch

from recap_core.checkpoints import checkpoint_sha256, read_checkpoint_config
from recap_core.checkpoints.format import CheckpointRef
from recap_core.checkpoints.layout import POLICY, VALUE, CheckpointLayout, write_lineage
from recap_core.extraction import METHOD_FACTS, Method
from recap_core.extraction import method as parse_method
from recap_core.loop.context import RunContext
from recap_core.loop.data import (
    demonstration_episodes,
    demonstration_steps,
    episodes_per_iteration,
    reward_config,
    task_episodes,
    task_steps,
)
from recap_core.loop.labels import read_aligned
from recap_core.loop.results import TrainingResult
from recap_core.loop.seeding import run_seeds
from recap_core.loop.settings import LoopSettings
from recap_core.models.vision import VisionConfig
from recap_core.steps import StepArrays
from recap_core.store import EpisodeStore
from recap_core.store.frame_cache import FrameCache, default_frame_cache_dir
from recap_core.store.streaming import StreamingStepReader
from recap_core.training import PolicyTrainConfig, ValueTrainConfig, train_policy, train_value_function
from recap_core.training.distributed import SINGLE_PROCESS, Distributed
from recap_core.training.policy_training import ADVANTAGE_COLUMN, INDICATOR_COLUMN
from recap_core.training.sources import ColumnReader, TrainingData, in_memory_data, streaming_data
from schemas.derived import ADVANTAGES, INDICATORS, PRETRAINING_ITERATION


def _parent(path: Path) -> CheckpointRef | None:
    parent = read_checkpoint_config(path).get("parent")
    return CheckpointRef(parent["path"], parent["sha256"]) if parent else None


def _finish(
    target: Path, episodes: pl.DataFrame, versions: Mapping[str, int], history, extra=None
) -> TrainingResult:
    return TrainingResult(
        checkpoint=CheckpointRef(str(target.resolve()), checkpoint_sha256(target)),
        parent=_parent(target),
        versions=dict(versions),
        episodes=episodes.height,
        steps=int(episodes["length"].sum()),
        episodes_per_iteration=episodes_per_iteration(episodes),
        history=history,
        extra=extra or {},
    )


def _lineage(episodes: pl.DataFrame, versions: Mapping[str, int], **facts) -> dict:
    return {
        "versions": dict(versions),
        "episodes": episodes.height,
        "steps": int(episodes["length"].sum()),
        "episodes_per_iteration": episodes_per_iteration(episodes),
        **facts,
    }


def _use_threads(settings: LoopSettings) -> None:
    torch.set_num_threads(max(1, settings.torch_threads))


def _value_config(base: ValueTrainConfig, tasks: list[str], settings: LoopSettings) -> ValueTrainConfig:
    """The configured value training with what the loop derives: the reward (c_fail, episode limits)
    and the seed."""
    reward = reward_config(tasks, settings.max_steps, settings.c_fail)
    return dataclasses.replace(base, reward=reward, seed=run_seeds(settings).value_network)


def iteration_value_config(settings: LoopSettings, task: str) -> ValueTrainConfig:
    """How V^k of ``task`` is trained (what cross-fitted fold models repeat)."""
    return _value_config(settings.value_finetune, [task], settings)


def _training_data(
    store: EpisodeStore,
    settings: LoopSettings,
    episodes: pl.DataFrame,
    load: Callable[[], StepArrays],
    versions: Mapping[str, int],
    columns: ColumnReader | None,
    config: ValueTrainConfig | PolicyTrainConfig,
    distributed: Distributed,
) -> TrainingData:
    """The stage's data as the settings ask: in memory (``load``), or streamed from the store in shards
    of ``training_memory_mb``; under torchrun this process gets only its rank's episodes' samples.
    When the configured network reads cameras, their frames are decoded with the steps (once per shard)."""
    vision: VisionConfig = config.architecture.images
    if settings.training_reader == "streaming":
        reader = StreamingStepReader(
            store,
            episodes,
            versions,
            settings.training_memory_mb * 2**20,
            vision.cameras,
            vision.image_size,
            FrameCache(default_frame_cache_dir()) if vision.cameras else None,
        )
        return streaming_data(
            reader, columns, config.val_fraction, config.seed, distributed.world_size, distributed.data_rank
        )
    steps = store.with_step_images(load(), vision.cameras, versions, vision.image_size)
    return in_memory_data(
        steps,
        dict(columns(steps)) if columns is not None else {},
        config.val_fraction,
        config.seed,
        distributed.world_size,
        distributed.data_rank,
    )


def _demonstration_data(
    store: EpisodeStore,
    settings: LoopSettings,
    versions: Mapping[str, int],
    columns: ColumnReader | None,
    config: ValueTrainConfig | PolicyTrainConfig,
    distributed: Distributed,
) -> TrainingData:
    """Pre-training's data: every demonstration, as the settings ask to read it."""
    episodes = demonstration_episodes(store, versions)
    load = partial(demonstration_steps, store, versions)
    return _training_data(store, settings, episodes, load, versions, columns, config, distributed)


@contextmanager
def _checkpoint_directory(
    layout: CheckpointLayout, target: Path, distributed: Distributed
) -> Iterator[Path | None]:
    """Rank 0 writes the checkpoint atomically; the other ranks train alongside and write nothing."""
    if distributed.is_main:
        with layout.publishing(target) as scratch:
            yield scratch
    else:
        yield None
    distributed.barrier()


def pretrain_value(ctx: RunContext, distributed: Distributed = SINGLE_PROCESS) -> TrainingResult:
    """V_pre: the multi-task distributional value function on all demonstrations."""
    store, settings = ctx.store, ctx.settings
    _use_threads(settings)
    versions = store.versions()
    episodes = demonstration_episodes(store, versions)
    tasks = sorted(set(episodes["task"].to_list()))
    target = ctx.checkpoints.pretrained(VALUE)
    config = _value_config(settings.value_pretrain, tasks, settings)
    data = _demonstration_data(store, settings, versions, None, config, distributed)
    with _checkpoint_directory(ctx.checkpoints, target, distributed) as scratch:
        _, history = train_value_function(data, config, out_dir=scratch, distributed=distributed)
        if scratch is not None:
            write_lineage(scratch, _lineage(data.episodes, versions, tasks=tasks))
    return _finish(target, data.episodes, versions, history, {"tasks": tasks})


def pretrain_policy(ctx: RunContext, distributed: Distributed = SINGLE_PROCESS) -> TrainingResult:
    """pi_pre: the advantage-conditioned policy on all demonstrations, with the pre-training indicators."""
    store, settings = ctx.store, ctx.settings
    _use_threads(settings)
    value_dir = ctx.checkpoints.value_pretrained()
    versions = ctx.checkpoints.read_lineage(value_dir)["versions"]
    labels = _IndicatorReader(store, PRETRAINING_ITERATION, value_dir, settings)
    versions = {**versions, INDICATORS: labels.version}
    target = ctx.checkpoints.pretrained(POLICY)
    config = dataclasses.replace(settings.policy_pretrain, seed=run_seeds(settings).policy_network())
    data = _demonstration_data(store, settings, versions, labels, config, distributed)
    with _checkpoint_directory(ctx.checkpoints, target, distributed) as scratch:
        _, history = train_policy(
            data, config=config, method=Method.RECAP, out_dir=scratch, distributed=distributed
        )
        positive = history.extra["positive_fraction"]
        if scratch is not None:
            write_lineage(scratch, _lineage(data.episodes, versions, positive_fraction=positive))
    return _finish(target, data.episodes, versions, history, {"positive_fraction": positive})


class _IndicatorReader:
    """The indicators of a selection's steps made under one value checkpoint, from one pinned version of
    the indicators table (so the policy's lineage names the exact labels it was trained on)."""

    def __init__(self, store: EpisodeStore, iteration: int, value_dir: Path, settings: LoopSettings) -> None:
        dataset = store.dataset(INDICATORS)
        if dataset is None:
            raise ValueError(f"no {INDICATORS} table in {store.uri}: materialise the indicators stage first")
        self.store, self.iteration, self.version = store, iteration, dataset.version
        self.value_sha = checkpoint_sha256(value_dir)
        self.per_shard = settings.training_reader == "streaming"

    def __call__(self, steps: StepArrays) -> dict[str, np.ndarray]:
        out = np.empty(len(steps), dtype=bool)
        steps = steps.without_images()  # selecting a task's episodes must not copy their frames
        tasks = steps.per_step("task")
        for task in sorted(set(tasks.tolist())):
            part = steps.select_episodes(steps.episodes["task"].to_numpy() == task)
            labels, _ = read_aligned(
                self.store, INDICATORS, "indicator", part, task, self.iteration, self.value_sha,
                version=self.version, only_these_episodes=self.per_shard,
            )  # fmt: skip
            out[tasks == task] = labels.astype(bool)
        return {INDICATOR_COLUMN: out}


class _AdvantageReader:
    """A_t under V^k for the steps of a selection (or shard), from one pinned advantages version."""

    def __init__(self, store: EpisodeStore, task: str, iteration: int, value_dir: Path, settings) -> None:
        dataset = store.dataset(ADVANTAGES)
        if dataset is None:
            raise ValueError(f"no {ADVANTAGES} table in {store.uri}: materialise the advantages stage first")
        self.store, self.task, self.iteration, self.version = store, task, iteration, dataset.version
        self.value_sha = checkpoint_sha256(value_dir)
        self.per_shard = settings.training_reader == "streaming"

    def __call__(self, steps: StepArrays) -> dict[str, np.ndarray]:
        values, _ = read_aligned(
            self.store, ADVANTAGES, "advantage", steps, self.task, self.iteration, self.value_sha,
            version=self.version, only_these_episodes=self.per_shard,
        )  # fmt: skip
        return {ADVANTAGE_COLUMN: values.astype(np.float32)}


def train_iteration_value(
    ctx: RunContext, task: str, iteration: int, distributed: Distributed = SINGLE_PROCESS
) -> TrainingResult:
    """V^k of one task: finetuned from V_pre on the task's data of iterations <= k."""
    store, settings = ctx.store, ctx.settings
    _use_threads(settings)
    parent = ctx.checkpoints.value_pretrained()
    versions = store.versions()
    target = ctx.checkpoints.iteration(VALUE, task, iteration)
    config = iteration_value_config(settings, task)
    data = _task_data(store, settings, task, iteration, versions, None, config, distributed)
    with _checkpoint_directory(ctx.checkpoints, target, distributed) as scratch:
        _, history = train_value_function(
            data, config, init_from=parent, out_dir=scratch, distributed=distributed
        )
        if scratch is not None:
            write_lineage(scratch, _lineage(data.episodes, versions, task=task, iteration=iteration))
    return _finish(target, data.episodes, versions, history)


def _task_data(
    store: EpisodeStore,
    settings: LoopSettings,
    task: str,
    iteration: int,
    versions: Mapping[str, int],
    columns: ColumnReader | None,
    config: ValueTrainConfig | PolicyTrainConfig,
    distributed: Distributed,
) -> TrainingData:
    """The task's episodes of iterations <= k at ``versions``: what V^k, pi^k and the baselines train on."""
    episodes = task_episodes(store, task, iteration, versions)
    steps = partial(task_steps, store, task, iteration, versions)
    return _training_data(store, settings, episodes, steps, versions, columns, config, distributed)


def iteration_value_versions(layout: CheckpointLayout, task: str, iteration: int) -> dict[str, int]:
    """The table versions V^k was trained on: advantages, labels and pi^k all read exactly these."""
    return layout.read_lineage(layout.value_of(task, iteration))["versions"]


def train_iteration_policy(
    ctx: RunContext,
    task: str,
    iteration: int,
    method: str = Method.RECAP,
    distributed: Distributed = SINGLE_PROCESS,
) -> TrainingResult:
    """pi^k of one task (or a baseline): finetuned from pi_pre on the task's data of iterations <= k.

    Every method gets the same budget: the preset's finetuning config (epochs, batch, weights rule) on
    the same steps, so the gradient-step count and the rule for the final weights are equal across
    RECAP, SFT, AWR and PPO; both are recorded in the checkpoint's lineage. AWR and PPO read the
    advantages the ``advantages`` stage wrote under V^k for exactly these steps.
    """
    store, settings, layout = ctx.store, ctx.settings, ctx.checkpoints
    _use_threads(settings)
    method = parse_method(method).value
    needs = METHOD_FACTS[Method(method)]
    parent = layout.policy_pretrained()
    reference = layout.data_collecting_policy(task, iteration) if needs.needs_reference else None
    versions = iteration_value_versions(layout, task, iteration)
    value_dir = layout.iteration(VALUE, task, iteration)
    columns: ColumnReader | None = None
    if needs.conditioned:
        columns = _IndicatorReader(store, iteration, value_dir, settings)
        versions = {**versions, INDICATORS: columns.version}
    elif needs.uses_advantages:
        columns = _AdvantageReader(store, task, iteration, value_dir, settings)
        versions = {**versions, ADVANTAGES: columns.version}
    target = layout.iteration(POLICY, task, iteration, method)
    config = dataclasses.replace(settings.policy_finetune, seed=run_seeds(settings).policy_network(iteration))
    data = _task_data(store, settings, task, iteration, versions, columns, config, distributed)
    with _checkpoint_directory(layout, target, distributed) as scratch:
        _, history = train_policy(
            data,
            config=config,
            init_from=parent,
            method=method,
            out_dir=scratch,
            reference=reference,
            distributed=distributed,
        )
        extra = {"gradient_steps": history.gradient_steps, "weights_rule": history.weights}
        for fact in ("positive_fraction", "advantage_mean", "ppo_reference", "ppo_reference_sha256"):
            if fact in history.extra:
                extra[fact] = history.extra[fact]
        facts = {"task": task, "iteration": iteration, "method": method, **extra}
        if scratch is not None:
            write_lineage(scratch, _lineage(data.episodes, versions, **facts))
    return _finish(target, data.episodes, versions, history, extra)
