"""What one evidence study is: its tasks, its number of RECAP iterations and where its report goes.

Kept free of Dagster so a notebook can rebuild a study's report from the ledger alone
(``write_report(...)`` with the same plan) without the orchestrator.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from recap_core.loop.settings import LoopSettings
from recap_core.settings import data_root

DEFAULT_ITERATIONS = 2


@dataclass(frozen=True)
class ExperimentPlan:
    """Pre-training, iteration 0 (SFT on demos) and ``iterations`` RECAP iterations of ``tasks``."""

    preset: str
    tasks: tuple[str, ...]
    iterations: int = DEFAULT_ITERATIONS

    def __post_init__(self) -> None:
        if self.iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {self.iterations}")
        if not self.tasks:
            raise ValueError("an experiment needs at least one task")

    @classmethod
    def from_settings(cls, preset: str, settings: LoopSettings, iterations: int) -> ExperimentPlan:
        return cls(preset, tuple(settings.tasks), iterations)

    @property
    def name(self) -> str:
        """A stable run name: the same plan reruns into (and overwrites) the same reports folder."""
        return f"{self.preset}-k{self.iterations}-{'+'.join(self.tasks)}"

    def report_dir(self, reports_root: Path | None = None) -> Path:
        return (reports_root or data_root() / "reports") / self.name

    @property
    def title(self) -> str:
        return (
            f"RECAP evidence study: preset {self.preset}, {self.iterations} RECAP iteration(s), "
            f"tasks {', '.join(self.tasks)}"
        )
