"""The one resource every asset uses: where the tables, checkpoints and ledger live, and the loop settings."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from recap_core.locations import DEFAULT_STUDY, checkpoint_dir, in_study, ledger_uri, store_uri
from recap_core.loop.experiment import replicate_settings
from recap_core.loop.settings import LoopSettings, preset
from recap_core.store import EpisodeStore


class RecapResource(dg.ConfigurableResource):
    """Store URIs, the RECAP preset and the study; empty fields fall back to the study's $RECAP_HOME paths.

    ``preset``: a preset name (recap_core/presets/) or the path of a preset YAML file. ``tasks``, ``study``
    and the ``training_*`` fields change the preset's settings of the same names, read by the same rules
    as a preset file's keys.
    """

    preset: str = "fast"
    tasks: list[str] = []  # noqa: RUF012 - pydantic copies field defaults per instance
    store_uri: str = ""
    checkpoint_root: str = ""
    ledger_uri: str = ""
    lerobot_drop_folder: str = ""
    study: str = DEFAULT_STUDY  # whose episodes, checkpoints and ledger rows this run reads and writes
    replicate: int = 0  # which replicate of a study this is: its own training and network seeds
    # Overrides of the preset's training data path (0 / "" keep the preset's): torchrun processes per
    # training stage, "memory" or "streaming" reads, and the streaming memory budget.
    training_processes: int = 0
    training_reader: str = ""
    training_memory_mb: int = 0

    def settings(self) -> LoopSettings:
        changes = {
            "tasks": list(self.tasks),
            "training_processes": self.training_processes,
            "training_reader": self.training_reader,
            "training_memory_mb": self.training_memory_mb,
        }
        overrides = {name: value for name, value in changes.items() if value}  # empty: the preset's
        return replicate_settings(preset(self.preset, study=self.study, **overrides), self.replicate)

    def fields(self) -> dict:
        """The resource's configuration, to rebuild it in another process (a torchrun rank)."""
        return {name: getattr(self, name) for name in type(self).model_fields}

    def store(self) -> EpisodeStore:
        return EpisodeStore(in_study(self.store_uri, self.study) if self.store_uri else store_uri(self.study))

    def checkpoints(self) -> Path:
        if self.checkpoint_root:
            return Path(in_study(self.checkpoint_root, self.study))
        return checkpoint_dir(self.study)

    def for_replicate(self, study: str, replicate: int) -> RecapResource:
        """The same resource for one replicate: its study namespace and its training seeds."""
        return RecapResource(**{**self.fields(), "study": study, "replicate": replicate})

    def ledger(self) -> str:
        return self.ledger_uri or ledger_uri()
