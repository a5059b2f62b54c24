"""The deployment gate: a new pi^k reaches the robots only if it is not worse than what they run.

"Not worse" is measured, not assumed: the candidate's held-out success rate against the deployed
version's, both evaluated on the same seeds, split and beta (rows of the metrics ledger), with a stated
margin for the noise of a finite evaluation. A first deployment has nothing to be compared with and
passes; a deployed version without a comparable evaluation holds the candidate back, since a gate that
cannot compare must not pass silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

COMPARED_ON = ("split", "eval_seeds", "beta")


@dataclass(frozen=True)
class GateDecision:
    publish: bool
    reason: str
    margin: float
    candidate_success_rate: float
    deployed_success_rate: float | None = None
    deployed_version: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(
    candidate: Mapping[str, Any],
    deployed: Mapping[str, Any] | None,
    margin: float,
    deployed_version: int | None = None,
) -> GateDecision:
    """``candidate``, ``deployed``: ledger rows (success_rate, split, eval_seeds, beta); ``deployed`` None
    when nothing is deployed yet (``deployed_version`` None) or when it has no comparable row."""
    if margin < 0:
        raise ValueError(f"the deployment margin must be >= 0, got {margin}")
    rate = float(candidate["success_rate"])
    if deployed_version is None:
        return GateDecision(True, "first deployment of the task", margin, rate)
    if deployed is None:
        return GateDecision(
            False,
            f"deployed version {deployed_version} has no evaluation on the candidate's seeds "
            f"({', '.join(f'{key}={candidate[key]}' for key in COMPARED_ON)}): evaluate it there, or "
            "publish by hand",
            margin,
            rate,
            None,
            deployed_version,
        )
    mismatched = [key for key in COMPARED_ON if candidate[key] != deployed[key]]
    if mismatched:
        raise ValueError(f"the gate compares evaluations on the same {', '.join(mismatched)}")
    reference = float(deployed["success_rate"])
    publish = rate >= reference - margin
    verb = "passes" if publish else "fails"
    return GateDecision(
        publish,
        f"{verb}: success {rate:.3f} vs deployed {reference:.3f} (margin {margin:.3f})",
        margin,
        rate,
        reference,
        deployed_version,
    )
