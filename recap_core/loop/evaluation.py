"""Evaluating a policy checkpoint on held-out initial states and recording it in the metrics ledger."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from recap_core.checkpoints import checkpoint_sha256
from recap_core.checkpoints.verification import weights_sha256
from recap_core.extraction import Method
from recap_core.ledger import record_evaluations
from recap_core.loop.context import RunContext
from recap_core.loop.policies import opened_policy, sampling_beta
from recap_core.loop.seeding import run_seeds
from recap_core.outcomes import (
    EpisodeOutcome,
    outcome_rows,
    record_outcomes,
    stored_evaluation_outcomes,
    summarize_outcomes,
)
from recap_core.sim.evaluation import evaluate_policy
from recap_core.sim.pool import FinishedRollout
from recap_core.sim.rollouts import RolloutConfig
from recap_core.sim.tasks import eval_seeds, get_task, is_eval_seed, task_names, with_max_steps


@dataclass
class EvaluationOutcome:
    row: dict[str, Any]
    ledger_version: int
    held_out: bool
    overlap: int


def _none_if_nan(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def evaluate_checkpoint(
    ctx: RunContext,
    policy_dir: Path,
    task_name: str,
    iteration: int,
    method: str,
    beta: float | None = None,
) -> EvaluationOutcome:
    """Run the policy unsupervised from ``eval_episodes`` held-out seeds and upsert its ledger row.

    ``beta`` overrides the preset's guidance (e.g. RECAP at beta = 1 next to the preset's beta = 2, so
    the effect of conditioning and the effect of guidance can be told apart); the row records the beta
    it was sampled with, and the advantage lookahead N of the labels it was trained on, and the same
    weights at two betas are two rows.
    """
    settings = ctx.settings
    seeding = run_seeds(settings)
    beta = settings.beta if beta is None else float(beta)
    torch.set_num_threads(max(1, settings.torch_threads))
    task = with_max_steps(get_task(task_name), settings.max_steps)
    seeds = eval_seeds(settings.eval_episodes, split=settings.eval_split)
    beta = sampling_beta(policy_dir, beta)
    episodes: list[EpisodeOutcome] = []
    periods: set[float] = set()

    def record(rollout: FinishedRollout) -> None:
        episodes.append(EpisodeOutcome(rollout.seed, rollout.success, len(rollout.actions)))
        periods.add(rollout.control_period)

    with opened_policy(settings, policy_dir, task_name, beta, seeding.evaluation_sampling) as policy:
        evaluate_policy(
            policy,
            task,
            seeds,
            reset_seconds=settings.reset_time_s,
            config=RolloutConfig(workers=settings.workers),
            on_episode=record,
        )
    overlap = len(set(seeds) & seeding.used_for_training(iteration))
    evaluation = {
        "task": task_name,
        "iteration": iteration,
        "method": method,
        "policy_sha256": checkpoint_sha256(policy_dir),
        "policy_weights_sha256": weights_sha256(policy_dir),
        "beta": beta,
        "split": settings.eval_split,
        "study": settings.study,
        "run_id": ctx.run_id,
        "evaluated_at": datetime.now(UTC),
    }
    # The episodes first, then the aggregate computed from what was stored: a ledger row never exists
    # without its episodes.
    (period,) = periods
    rows = outcome_rows(evaluation, episodes, control_period_s=period, reset_s=settings.reset_time_s)
    record_outcomes(ctx.ledger_uri, rows)
    stored = stored_evaluation_outcomes(ctx.ledger_uri, evaluation)
    result = summarize_outcomes(task_name, stored)
    row = evaluation | {
        "policy_checkpoint": str(policy_dir.resolve()),
        "lookahead": settings.lookahead,
        "episodes": result.episodes,
        "success_rate": result.success_rate,
        "success_rate_se": _none_if_nan(result.success_rate_se) or 0.0,
        "mean_duration_s": _none_if_nan(result.mean_success_duration_s),
        "mean_duration_s_se": _none_if_nan(result.mean_success_duration_se),
        "throughput_per_hour": result.throughput_per_hour,
        "throughput_per_hour_se": _none_if_nan(result.throughput_se) or 0.0,
        "eval_seeds": f"{seeds[0]}-{seeds[-1]}",
    }
    version = record_evaluations(ctx.ledger_uri, [row])
    held_out = all(is_eval_seed(s) for s in seeds) and overlap == 0
    return EvaluationOutcome(row, version, held_out, overlap)


def evaluate_iteration(ctx: RunContext, task_name: str, iteration: int) -> EvaluationOutcome | None:
    """pi^k of the RECAP loop on the held-out seeds; None for a task with no simulator (a fleet task,
    whose policy is evaluated on the robot and arrives as next iteration's data)."""
    if task_name not in task_names():
        return None
    policy_dir = ctx.checkpoints.policy_of(task_name, iteration)
    return evaluate_checkpoint(ctx, policy_dir, task_name, iteration, Method.RECAP.value)
