"""What a stage returns: the product and the lineage facts a pipeline records next to it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from recap_core.checkpoints.format import CheckpointRef
from recap_core.loop.value_diagnostics import HeldOutValueCheck, ValueDiagnostics
from recap_core.training.config import TrainingHistory


@dataclass
class TrainingResult:
    """A trained checkpoint, what it was finetuned from, and exactly which data trained it."""

    checkpoint: CheckpointRef
    parent: CheckpointRef | None
    versions: dict[str, int]
    episodes: int
    steps: int
    episodes_per_iteration: dict[int, int]
    history: TrainingHistory
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, so a stage trained in other processes (torchrun) can hand its result back."""
        return {
            "checkpoint": dataclasses.asdict(self.checkpoint),
            "parent": dataclasses.asdict(self.parent) if self.parent else None,
            "versions": dict(self.versions),
            "episodes": self.episodes,
            "steps": self.steps,
            "episodes_per_iteration": {str(k): v for k, v in self.episodes_per_iteration.items()},
            "history": self.history.to_dict(),
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingResult:
        history_fields = {f.name for f in dataclasses.fields(TrainingHistory)}
        return cls(
            checkpoint=CheckpointRef(**data["checkpoint"]),
            parent=CheckpointRef(**data["parent"]) if data["parent"] else None,
            versions={str(k): int(v) for k, v in data["versions"].items()},
            episodes=int(data["episodes"]),
            steps=int(data["steps"]),
            episodes_per_iteration={int(k): int(v) for k, v in data["episodes_per_iteration"].items()},
            history=TrainingHistory(**{k: v for k, v in data["history"].items() if k in history_fields}),
            extra=dict(data["extra"]),
        )


@dataclass
class LabelResult:
    """Per-task thresholds and positive fractions of one labelling pass.

    ``population`` names the steps each task's target fraction is defined on (``population_steps`` of
    them); ``population_positive_fraction`` is the realised share there (what the target is checked
    against); ``positive_fraction`` is the share over all labelled steps after corrections are forced,
    and ``positive_fraction_per_kind`` splits it into demo, autonomous and correction steps.
    """

    iteration: int
    mode: str
    thresholds: dict[str, float]
    target_fraction: dict[str, float]
    positive_fraction: dict[str, float]
    population: dict[str, str]
    population_steps: dict[str, int]
    population_positive_fraction: dict[str, float]
    positive_fraction_per_kind: dict[str, dict[str, float | None]]
    corrections: int
    corrections_labelled_true: int
    steps: int
    table_version: int
    value_checkpoint: CheckpointRef | None
    versions: dict[str, int]


@dataclass
class AdvantageResult:
    """The advantages stage's product: the lookahead N it used, the table version it wrote and what it
    says about V^k."""

    lookahead: int
    table_version: int
    steps: int
    value_checkpoint: CheckpointRef
    versions: dict[str, int]
    mean_advantage: float
    mean_value_success: float | None
    mean_value_failure: float | None
    value_return_mae: float
    diagnostics: ValueDiagnostics
    held_out: HeldOutValueCheck | None = None  # V^k against V^{k-1} on the new episodes (k >= 1)
    folds: int = 1  # 1: V^k's own values; F: cross-fitted over F folds (recap_core/loop/cross_fitting.py)
    held_out_per_fold: list[int] = field(default_factory=list)  # episodes each fold model valued
    in_sample_return_mae: float | None = None  # V^k's own |V - return| (= value_return_mae when folds = 1)
