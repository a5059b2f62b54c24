"""The comparison methods of the study: SFT, AWR and PPO-style extraction on RECAP's own data.

A baseline is only a fair comparison if the sole difference from pi^k is how the policy is extracted.
So each baseline of (task, iteration k) is finetuned FROM pi_pre (like pi^k), on the steps of exactly the
table versions V^k was trained on (``iteration_value_versions``), with the advantages the ``advantages``
stage wrote under V^k (read back aligned step by step), and evaluated on the same held-out seeds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recap_core.checkpoints import checkpoint_sha256
from recap_core.checkpoints.layout import POLICY, VALUE, CheckpointLayout
from recap_core.extraction import BASELINES, METHOD_FACTS, RECAP_UNGUIDED, Method
from recap_core.loop.context import RunContext
from recap_core.loop.evaluation import EvaluationOutcome, evaluate_checkpoint
from recap_core.loop.results import TrainingResult
from recap_core.loop.training_stages import iteration_value_versions, train_iteration_policy


@dataclass
class BaselineOutcome:
    """One baseline of one (task, iteration): its training lineage and its ledger row."""

    method: str
    training: TrainingResult
    evaluation: EvaluationOutcome
    advantages_mean: float | None


def baseline_path(layout: CheckpointLayout, task: str, iteration: int, method: str) -> Path:
    return layout.iteration(POLICY, task, iteration, method)


def train_baseline(ctx: RunContext, task: str, iteration: int, method: str) -> TrainingResult:
    """Finetune one baseline from pi_pre on V^k's data (``advantage_mean`` in its extra: the mean A_t)."""
    return train_iteration_policy(ctx, task, iteration, require_baseline(method).value)


def require_baseline(method: str) -> Method:
    if method not in BASELINES:
        raise ValueError(f"unknown baseline {method!r}; baselines: {', '.join(BASELINES)}")
    return Method(method)


def run_baselines(
    ctx: RunContext,
    task: str,
    iteration: int,
    methods: tuple[str, ...] = BASELINES,
    train: Callable[[str], TrainingResult] | None = None,
) -> list[BaselineOutcome]:
    """Train and evaluate every baseline of one (task, iteration) into the metrics ledger, plus pi^k at
    beta = 1 (ledger method ``recap_beta1``). ``train(method)`` trains one baseline elsewhere (e.g. on
    torchrun ranks); by default it is trained here."""
    outcomes = []
    for method in (require_baseline(name).value for name in methods):
        training = train(method) if train else train_baseline(ctx, task, iteration, method)
        uses_advantages = METHOD_FACTS[Method(method)].uses_advantages
        mean_advantage = training.extra.get("advantage_mean") if uses_advantages else None
        policy_dir = Path(training.checkpoint.path)
        evaluation = evaluate_checkpoint(ctx, policy_dir, task, iteration, method)
        outcomes.append(BaselineOutcome(method, training, evaluation, mean_advantage))
    return outcomes


def evaluate_recap_unguided(ctx: RunContext, task: str, iteration: int) -> EvaluationOutcome:
    """pi^k (the RECAP policy of the iteration) on the same held-out seeds at beta = 1."""
    policy_dir = ctx.checkpoints.policy_of(task, iteration)
    return evaluate_checkpoint(ctx, policy_dir, task, iteration, RECAP_UNGUIDED, beta=1.0)


def baseline_lineage(layout: CheckpointLayout, task: str, iteration: int, method: str) -> dict:
    """What a stored baseline was trained on (versions, episodes per iteration, method)."""
    return layout.read_lineage(baseline_path(layout, task, iteration, method))


LINEAGE_DATA_KEYS = ("episodes", "steps")
"""The table versions a baseline must share with pi^k."""
LINEAGE_BUDGET_KEYS = ("gradient_steps", "weights_rule")
"""The training budget a baseline must share with pi^k."""


@dataclass
class BaselineAudit:
    """Whether every baseline differs from pi^k only in how the policy is extracted.

    ``reference`` is what pi^k trained on (V^k's lineage when pi^k is not stored), ``mismatched`` the
    baselines trained on other table versions, another step count or budget, or not from pi_pre.
    """

    reference: dict[str, Any]
    pretrained_sha256: str
    value_versions: dict[str, int]
    mismatched: list[str] = field(default_factory=list)

    @property
    def same_data(self) -> bool:
        return not self.mismatched


def audit_baselines(
    layout: CheckpointLayout, task: str, iteration: int, outcomes: list[BaselineOutcome]
) -> BaselineAudit:
    """Compare each baseline's lineage with pi^k's: same data, same budget, same parent (pi_pre)."""
    pi_k = layout.iteration(POLICY, task, iteration)
    reference = layout.read_lineage(pi_k if layout.exists(pi_k) else layout.iteration(VALUE, task, iteration))
    audit = BaselineAudit(
        reference=reference,
        pretrained_sha256=checkpoint_sha256(layout.pretrained(POLICY)),
        value_versions=iteration_value_versions(layout, task, iteration),
    )
    for outcome in outcomes:
        training = outcome.training
        parent_sha = training.parent.sha256 if training.parent else "none"
        other_data = any(training.versions.get(k) != reference["versions"].get(k) for k in LINEAGE_DATA_KEYS)
        other_budget = any(training.extra.get(k) != reference.get(k) for k in LINEAGE_BUDGET_KEYS)
        if (
            other_data
            or other_budget
            or training.steps != reference["steps"]
            or parent_sha != audit.pretrained_sha256
        ):
            audit.mismatched.append(outcome.method)
    return audit
