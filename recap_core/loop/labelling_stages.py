"""Advantages, per-task thresholds and improvement indicators, written to the store's derived tables.

Pre-training labels use the full-episode advantage R_t - V_pre(o_t) and a 30% positive target on the
demonstrations; iteration k uses the N-step advantage under V^k and a 40% target (per-task overrides
allowed) on iteration k's own autonomous steps (``threshold_population``). The threshold then labels all
of the task's data so far. Corrections are forced True, and iteration 0 labels everything True (plain SFT
on the task's demonstrations).
"""

from __future__ import annotations

import numpy as np

from recap_core.checkpoints import CheckpointRef, checkpoint_sha256, load_value_function, predict_values
from recap_core.checkpoints.layout import VALUE
from recap_core.checkpoints.value import ValueFunction
from recap_core.extraction import Method
from recap_core.loop.context import RunContext
from recap_core.loop.data import demonstration_steps, task_steps
from recap_core.loop.labels import read_aligned, write_advantages, write_indicators, write_thresholds
from recap_core.loop.results import AdvantageResult, LabelResult
from recap_core.loop.training_stages import iteration_value_config, iteration_value_versions
from recap_core.loop.value_diagnostics import HeldOutValueCheck, held_out_value_check, value_diagnostics
from recap_core.rules import (
    episode_advantages,
    indicators,
    normalised_returns,
    nstep_advantages,
    positive_fraction_per_task,
    positive_share_per_kind,
    step_kinds,
    task_thresholds,
    threshold_population,
)
from recap_core.steps import StepArrays
from recap_core.store import EpisodeStore
from schemas.derived import ADVANTAGES, PRETRAINING_ITERATION


def _with_value_images(
    store: EpisodeStore, steps: StepArrays, vf: ValueFunction, versions: dict[str, int]
) -> StepArrays:
    """The steps with the frames of every camera the value function reads (as its checkpoint says)."""
    vision = vf.net.config.images
    return store.with_step_images(steps, vision.cameras, versions, vision.image_size)


def _label(
    store: EpisodeStore,
    steps: StepArrays,
    iteration: int,
    advantages: np.ndarray,
    fraction: float,
    mode: str,
    value_ref,
    versions: dict[str, int],
) -> LabelResult:
    tasks = steps.per_step("task")
    population, population_names = threshold_population(steps, iteration)
    thresholds = task_thresholds(
        advantages, tasks, fraction, population=population, population_names=population_names
    )
    labels = indicators(advantages, tasks, thresholds, steps.is_correction, mode=mode)
    after = positive_fraction_per_task(labels, tasks)
    per_kind = positive_share_per_kind(labels, step_kinds(steps), tasks)
    version = write_indicators(store, steps, iteration, labels, mode, value_ref.sha256)
    write_thresholds(store, iteration, thresholds, after, per_kind, mode, value_ref.sha256)
    corrections = steps.is_correction
    return LabelResult(
        iteration=iteration,
        mode=mode,
        thresholds={t: th.threshold for t, th in thresholds.items()},
        target_fraction={t: th.target_fraction for t, th in thresholds.items()},
        positive_fraction=after,
        population={t: th.population for t, th in thresholds.items()},
        population_steps={t: th.n_steps for t, th in thresholds.items()},
        population_positive_fraction={t: th.realised_fraction for t, th in thresholds.items()},
        positive_fraction_per_kind=per_kind,
        corrections=int(corrections.sum()),
        corrections_labelled_true=int(labels[corrections].sum()),
        steps=len(steps),
        table_version=version,
        value_checkpoint=value_ref,
        versions=versions,
    )


def pretraining_labels(ctx: RunContext) -> LabelResult:
    """Full-episode advantages under V_pre on all demonstrations; 30% positive per task."""
    store, settings = ctx.store, ctx.settings
    value_dir = ctx.checkpoints.value_pretrained()
    versions = ctx.checkpoints.read_lineage(value_dir)["versions"]
    vf = load_value_function(value_dir)
    steps = _with_value_images(store, demonstration_steps(store, versions), vf, versions)
    values = predict_values(vf, steps)
    returns = normalised_returns(steps, vf.reward_config, vf.net.config.support)
    advantages = episode_advantages(steps, values, vf.reward_config)
    write_advantages(
        store, steps, PRETRAINING_ITERATION, values, returns, advantages, vf.checkpoint.sha256, versions
    )
    return _label(
        store,
        steps,
        PRETRAINING_ITERATION,
        advantages,
        settings.pretrain_positive_fraction,
        Method.RECAP.value,
        vf.checkpoint,
        versions,
    )


def iteration_advantages(ctx: RunContext, task: str, iteration: int) -> AdvantageResult:
    """N-step advantages of the task's data of iterations <= k under V^k, with V^k's diagnostics."""
    store, settings = ctx.store, ctx.settings
    versions = iteration_value_versions(ctx.checkpoints, task, iteration)
    vf = load_value_function(ctx.checkpoints.value_of(task, iteration))
    steps = _with_value_images(store, task_steps(store, task, iteration, versions), vf, versions)
    in_sample = predict_values(vf, steps)
    returns = normalised_returns(steps, vf.reward_config, vf.net.config.support)
    folds, held_out_per_fold = 1, []
    values = in_sample
    if settings.advantage_folds > 1 and iteration > 0:  # iteration 0 is SFT: every indicator True
        from recap_core.loop.cross_fitting import cross_fitted_values  # trains: only when asked to

        folds = settings.advantage_folds
        config = iteration_value_config(settings, task)
        values, held_out_per_fold = cross_fitted_values(
            steps, folds, config, ctx.checkpoints.value_pretrained()
        )
    advantages = nstep_advantages(steps, values, settings.lookahead, vf.reward_config)
    version = write_advantages(
        store, steps, iteration, values, returns, advantages, vf.checkpoint.sha256, versions
    )
    held_out = _held_out_check(ctx, task, iteration, steps, in_sample, returns, vf)
    success = steps.per_step("success").astype(bool)
    return AdvantageResult(
        lookahead=settings.lookahead,
        table_version=version,
        steps=len(steps),
        value_checkpoint=vf.checkpoint,
        versions=versions,
        mean_advantage=float(advantages.mean()),
        mean_value_success=float(values[success].mean()) if success.any() else None,
        mean_value_failure=float(values[~success].mean()) if (~success).any() else None,
        value_return_mae=float(np.abs(values - returns).mean()),
        diagnostics=value_diagnostics(steps, values, returns),
        held_out=held_out,
        folds=folds,
        held_out_per_fold=held_out_per_fold,
        in_sample_return_mae=float(np.abs(in_sample - returns).mean()),
    )


def _held_out_check(
    ctx: RunContext,
    task: str,
    iteration: int,
    steps: StepArrays,
    values: np.ndarray,
    returns: np.ndarray,
    vf: ValueFunction,
) -> HeldOutValueCheck | None:
    """V^k (its own ``values`` of ``steps``) against V^{k-1} on iteration k's new episodes (None at k = 0
    or without V^{k-1})."""
    previous_dir = ctx.checkpoints.iteration(VALUE, task, iteration - 1) if iteration > 0 else None
    if previous_dir is None or not ctx.checkpoints.exists(previous_dir):
        return None
    new_rows = (steps.episodes["iteration"] == iteration).to_numpy()
    new = new_rows[steps.episode_index]
    if not new.any():
        return None
    # Both value functions' advantages on the new episodes only (an advantage never looks past its
    # episode's end, so they are what they would be among all the steps)
    fresh = steps.select_episodes(new_rows)
    previous = load_value_function(previous_dir)
    held_out_values = predict_values(previous, fresh)
    lookahead = ctx.settings.lookahead
    return held_out_value_check(
        np.ones(len(fresh), dtype=bool),
        values[new],
        held_out_values,
        returns[new],
        nstep_advantages(fresh, values[new], lookahead, vf.reward_config),
        nstep_advantages(fresh, held_out_values, lookahead, previous.reward_config),
        ctx.settings.positive_fraction(task),
        int(new_rows.sum()),
    )


def iteration_labels(ctx: RunContext, task: str, iteration: int) -> LabelResult:
    """Threshold at the task's target percentile and indicators; all True at iteration 0 (SFT)."""
    store, settings = ctx.store, ctx.settings
    versions = iteration_value_versions(ctx.checkpoints, task, iteration)
    steps = task_steps(store, task, iteration, versions)
    vf_dir = ctx.checkpoints.value_of(task, iteration)
    value_ref = CheckpointRef(str(vf_dir.resolve()), checkpoint_sha256(vf_dir))
    advantages, _ = read_aligned(store, ADVANTAGES, "advantage", steps, task, iteration, value_ref.sha256)
    advantages = advantages.astype(np.float64)
    mode = (Method.SFT if iteration == 0 else Method.RECAP).value
    return _label(
        store, steps, iteration, advantages, settings.positive_fraction(task), mode, value_ref, versions
    )
