"""What one evidence study is: its tasks, its number of RECAP iterations and where its report goes.

Kept free of Dagster so a notebook can rebuild a study's report from the ledger alone
(``write_report(...)`` with the same plan) without the orchestrator.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from recap_core.locations import DEFAULT_STUDY, data_root, require_study_name
from recap_core.loop.seeding import MAX_REPLICATES
from recap_core.loop.settings import LoopSettings
from recap_core.presets import preset_label

DEFAULT_ITERATIONS = 2


@dataclass(frozen=True)
class ExperimentPlan:
    """Pre-training, iteration 0 (SFT on demos) and ``iterations`` RECAP iterations of ``tasks``, run as
    ``replicates`` independent studies (each its own namespace: ``<study>-r<k>`` when more than one)."""

    preset: str
    tasks: tuple[str, ...]
    iterations: int = DEFAULT_ITERATIONS
    study: str = DEFAULT_STUDY
    replicates: int = 1

    def __post_init__(self) -> None:
        if self.iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {self.iterations}")
        if not self.tasks:
            raise ValueError("an experiment needs at least one task")
        if not 1 <= self.replicates <= MAX_REPLICATES:
            raise ValueError(f"replicates must be in [1, {MAX_REPLICATES}], got {self.replicates}")
        require_study_name(self.study)

    @classmethod
    def from_settings(
        cls, preset: str, settings: LoopSettings, iterations: int, replicates: int = 1
    ) -> ExperimentPlan:
        return cls(preset_label(preset), tuple(settings.tasks), iterations, settings.study, replicates)

    @property
    def studies(self) -> list[str]:
        """The replicates' study names (the study itself when there is one replicate)."""
        if self.replicates == 1:
            return [self.study]
        return [f"{self.study}-r{replicate}" for replicate in range(self.replicates)]

    @property
    def name(self) -> str:
        """A stable run name: the same plan reruns into (and overwrites) the same reports folder."""
        study = "" if self.study == DEFAULT_STUDY else f"{self.study}-"
        replicates = f"-x{self.replicates}" if self.replicates > 1 else ""
        return f"{study}{self.preset}-k{self.iterations}-{'+'.join(self.tasks)}{replicates}"

    def report_dir(self, reports_root: Path | None = None) -> Path:
        return (reports_root or data_root() / "reports") / self.name

    @property
    def title(self) -> str:
        return (
            f"RECAP evidence study {self.study}: preset {self.preset}, {self.iterations} RECAP iteration(s), "
            f"tasks {', '.join(self.tasks)}, {self.replicates} replicate(s)"
        )
