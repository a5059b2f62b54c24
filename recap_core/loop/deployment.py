"""Iteration k's deployment step: gate pi^k against the deployed policy, publish it if it passes."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from recap_core.checkpoints import checkpoint_sha256
from recap_core.extraction import Method
from recap_core.ledger import read_ledger
from recap_core.loop.context import RunContext
from recap_core.serving.deployment import Deployment, DeploymentPointer
from recap_core.serving.gate import COMPARED_ON, GateDecision, decide


@dataclass(frozen=True)
class DeploymentOutcome:
    decision: GateDecision
    deployment: Deployment | None  # the published entry, None when held back
    current: Deployment | None  # what the robots get after this step


def deployment_pointer(ctx: RunContext, task: str) -> DeploymentPointer:
    return DeploymentPointer(ctx.checkpoints.root, task)


def deploy_iteration(ctx: RunContext, task: str, iteration: int) -> DeploymentOutcome:
    """Publish pi^k to ``task``'s serving pointer when the gate passes (its evaluation must exist)."""
    path = ctx.checkpoints.policy_of(task, iteration)
    sha = checkpoint_sha256(path)
    pointer = deployment_pointer(ctx, task)
    current = pointer.current()
    ledger = read_ledger(ctx.ledger_uri).filter(
        study=ctx.settings.study, task=task, method=Method.RECAP.value, split=ctx.settings.eval_split
    )
    candidate = _newest(ledger.filter(policy_sha256=sha, beta=ctx.settings.beta))
    if candidate is None:
        raise LookupError(
            f"pi^{iteration} of {task} ({sha[:12]}) has no evaluation: materialise evaluation first"
        )
    if current is not None and current.sha256 == sha:
        rate = float(candidate["success_rate"])
        decision = GateDecision(
            False, f"already deployed as version {current.version}", 0.0, rate, rate, current.version
        )
        return DeploymentOutcome(decision, None, current)
    reference = None
    if current is not None:
        reference = _newest(
            ledger.filter(policy_sha256=current.sha256, **{key: candidate[key] for key in COMPARED_ON})
        )
    decision = decide(candidate, reference, ctx.settings.deploy_margin, current.version if current else None)
    if not decision.publish:
        return DeploymentOutcome(decision, None, current)
    entry = pointer.publish(
        Deployment(
            checkpoint=str(path.resolve()),  # the immutable version folder, not the re-pointable link
            sha256=sha,
            task=task,
            iteration=iteration,
            method=Method.RECAP.value,
            beta=float(ctx.settings.beta),
            reason="gate passed",
            gate=decision.to_dict(),
        )
    )
    return DeploymentOutcome(decision, entry, entry)


def _newest(rows: pl.DataFrame) -> dict | None:
    if rows.is_empty():
        return None
    return rows.sort("evaluated_at").row(-1, named=True)
