"""The training stages of Algorithm 1: V_pre, pi_pre, and per task and iteration V^k and pi^k.

Every finetune starts FROM THE PRE-TRAINED CHECKPOINT, never from iteration k-1: the paper retrains
V^k and pi^k from V_pre and pi_pre on all data so far, which keeps errors of one iteration from
compounding into the next.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from recap_core.loop.artifacts import (
    atomic_directory,
    data_collecting_policy,
    iteration_path,
    pretrained_path,
    read_lineage,
    require_checkpoint,
    write_lineage,
)
from recap_core.loop.data import demonstration_steps, episodes_per_iteration, reward_config, task_steps
from recap_core.loop.labels import INDICATORS, PRETRAINING_ITERATION, read_aligned
from recap_core.loop.results import TrainingResult
from recap_core.loop.settings import LoopSettings
from recap_core.steps import StepArrays
from recap_core.store import EpisodeStore
from recap_core.training import (
    ValueTrainConfig,
    checkpoint_sha256,
    read_checkpoint_config,
    train_policy,
    train_value_function,
)
from recap_core.training.checkpoints import CheckpointRef


def _parent(path: Path) -> CheckpointRef | None:
    parent = read_checkpoint_config(path).get("parent")
    return CheckpointRef(parent["path"], parent["sha256"]) if parent else None


def _finish(
    target: Path, steps: StepArrays, versions: Mapping[str, int], history, extra=None
) -> TrainingResult:
    return TrainingResult(
        checkpoint=CheckpointRef(str(target.resolve()), checkpoint_sha256(target)),
        parent=_parent(target),
        versions=dict(versions),
        episodes=steps.episodes.height,
        steps=len(steps),
        episodes_per_iteration=episodes_per_iteration(steps),
        history=history,
        extra=extra or {},
    )


def _lineage(steps: StepArrays, versions: Mapping[str, int], **facts) -> dict:
    return {
        "versions": dict(versions),
        "episodes": steps.episodes.height,
        "steps": len(steps),
        "episodes_per_iteration": episodes_per_iteration(steps),
        **facts,
    }


def _use_threads(settings: LoopSettings) -> None:
    torch.set_num_threads(max(1, settings.torch_threads))


def _value_config(base: ValueTrainConfig, tasks: list[str], settings: LoopSettings) -> ValueTrainConfig:
    return dataclasses.replace(base, reward=reward_config(tasks, settings.max_steps), seed=settings.seed)


def pretrain_value(store: EpisodeStore, settings: LoopSettings, root: Path) -> TrainingResult:
    """V_pre: the multi-task distributional value function on all demonstrations."""
    _use_threads(settings)
    versions = store.versions()
    steps = demonstration_steps(store, versions)
    tasks = sorted(set(steps.episodes["task"].to_list()))
    target = pretrained_path(root, "value")
    with atomic_directory(target) as scratch:
        _, history = train_value_function(
            steps, _value_config(settings.value_pretrain, tasks, settings), out_dir=scratch
        )
        write_lineage(scratch, _lineage(steps, versions, tasks=tasks))
    return _finish(target, steps, versions, history, {"tasks": tasks})


def pretrain_policy(store: EpisodeStore, settings: LoopSettings, root: Path) -> TrainingResult:
    """pi_pre: the advantage-conditioned policy on all demonstrations, with the pre-training indicators."""
    _use_threads(settings)
    value_dir = require_checkpoint(pretrained_path(root, "value"), "V_pre", "value_function_pretrained")
    versions = read_lineage(value_dir)["versions"]
    steps = demonstration_steps(store, versions)
    labels, label_versions = _labels(store, steps, PRETRAINING_ITERATION, value_dir)
    versions = {**versions, **label_versions}
    target = pretrained_path(root, "policy")
    config = dataclasses.replace(settings.policy_pretrain, seed=settings.seed)
    with atomic_directory(target) as scratch:
        _, history = train_policy(steps, labels, config, method="recap", out_dir=scratch)
        write_lineage(scratch, _lineage(steps, versions, positive_fraction=float(labels.mean())))
    return _finish(target, steps, versions, history, {"positive_fraction": float(labels.mean())})


def _labels(
    store: EpisodeStore, steps: StepArrays, iteration: int, value_dir: Path
) -> tuple[np.ndarray, dict[str, int]]:
    """The indicators of ``steps`` made under the value checkpoint in ``value_dir``, and the indicators
    table version read (so the policy's lineage names the exact labels it was trained on)."""
    value_sha = checkpoint_sha256(value_dir)
    out = np.empty(len(steps), dtype=bool)
    tasks = steps.per_step("task")
    version = -1
    for task in sorted(set(tasks.tolist())):
        part = steps.select_episodes(steps.episodes["task"].to_numpy() == task)
        labels, version = read_aligned(store, INDICATORS, "indicator", part, task, iteration, value_sha)
        out[tasks == task] = labels.astype(bool)
    return out, {INDICATORS: version}


def train_iteration_value(
    store: EpisodeStore, settings: LoopSettings, root: Path, task: str, iteration: int
) -> TrainingResult:
    """V^k of one task: finetuned from V_pre on the task's data of iterations <= k."""
    _use_threads(settings)
    parent = require_checkpoint(pretrained_path(root, "value"), "V_pre", "value_function_pretrained")
    versions = store.versions()
    steps = task_steps(store, task, iteration, versions)
    target = iteration_path(root, "value", task, iteration)
    config = _value_config(settings.value_finetune, [task], settings)
    with atomic_directory(target) as scratch:
        _, history = train_value_function(steps, config, init_from=parent, out_dir=scratch)
        write_lineage(scratch, _lineage(steps, versions, task=task, iteration=iteration))
    return _finish(target, steps, versions, history)


def iteration_value_versions(root: Path, task: str, iteration: int) -> dict[str, int]:
    """The table versions V^k was trained on: advantages, labels and pi^k all read exactly these."""
    value_dir = require_checkpoint(iteration_path(root, "value", task, iteration), "V^k", "value_function")
    return read_lineage(value_dir)["versions"]


def train_iteration_policy(
    store: EpisodeStore,
    settings: LoopSettings,
    root: Path,
    task: str,
    iteration: int,
    method: str = "recap",
    advantages: np.ndarray | None = None,
) -> TrainingResult:
    """pi^k of one task (or a baseline): finetuned from pi_pre on the task's data of iterations <= k.

    Every method gets the same budget: the preset's finetuning config (epochs, batch, weights rule) on
    the same steps, so the gradient-step count and the rule for the final weights are equal across
    RECAP, SFT, AWR and PPO; both are recorded in the checkpoint's lineage.
    """
    _use_threads(settings)
    parent = require_checkpoint(pretrained_path(root, "policy"), "pi_pre", "policy_pretrained")
    reference = data_collecting_policy(root, task, iteration) if method == "ppo" else None
    versions = iteration_value_versions(root, task, iteration)
    steps = task_steps(store, task, iteration, versions)
    labels = None
    if method == "recap":
        value_dir = iteration_path(root, "value", task, iteration)
        labels, label_versions = _labels(store, steps, iteration, value_dir)
        versions = {**versions, **label_versions}
    target = iteration_path(root, "policy", task, iteration, method)
    config = dataclasses.replace(settings.policy_finetune, seed=settings.seed + iteration)
    with atomic_directory(target) as scratch:
        _, history = train_policy(
            steps,
            labels,
            config,
            init_from=parent,
            method=method,
            advantages=advantages,
            out_dir=scratch,
            reference=reference,
        )
        extra = {"gradient_steps": history.gradient_steps, "weights_rule": history.weights}
        if labels is not None:
            extra["positive_fraction"] = float(labels.mean())
        if reference is not None:
            extra["ppo_reference"] = history.extra["ppo_reference"]
            extra["ppo_reference_sha256"] = history.extra["ppo_reference_sha256"]
        facts = {"task": task, "iteration": iteration, "method": method, **extra}
        write_lineage(scratch, _lineage(steps, versions, **facts))
    return _finish(target, steps, versions, history, extra)
