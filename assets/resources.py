"""The one resource every asset uses: which preset and study a run belongs to, and where its tables,
checkpoints and ledger live. Each step turns it into a run context once (``run_context``)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from recap_core.checkpoints.layout import CheckpointLayout
from recap_core.locations import DEFAULT_STUDY, checkpoint_root, ledger_uri, store_uri
from recap_core.loop.context import RunContext
from recap_core.loop.seeding import replicate_settings
from recap_core.loop.settings import LoopSettings, preset
from recap_core.store import EpisodeStore


class RecapResource(dg.ConfigurableResource):
    """Store URIs, the RECAP preset and the study; empty fields fall back to the study's $RECAP_HOME paths.

    ``preset``: a preset name (recap_core/presets/) or the path of a preset YAML file. ``tasks``,
    ``study``, ``eval_episodes`` and the ``training_*`` fields change the preset's settings of the same
    names, read by the same rules as a preset file's keys.
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
    eval_episodes: int = 0  # held-out seeds per evaluation (0: the preset's)

    def settings(self) -> LoopSettings:
        """The preset with this resource's changes, read and validated (once per call: a step reads them
        through its run context)."""
        changes = {
            "tasks": list(self.tasks),
            "training_processes": self.training_processes,
            "training_reader": self.training_reader,
            "training_memory_mb": self.training_memory_mb,
            "eval_episodes": self.eval_episodes,
        }
        overrides = {name: value for name, value in changes.items() if value}  # empty: the preset's
        return replicate_settings(preset(self.preset, study=self.study, **overrides), self.replicate)

    def run_context(self, run_id: str = "", settings: LoopSettings | None = None) -> RunContext:
        """What one step works with: the resolved settings, the study's store, checkpoints and ledger."""
        return RunContext(
            store=self.store(),
            settings=settings or self.settings(),
            checkpoints=self.checkpoint_layout(),
            ledger_uri=self.ledger(),
            run_id=run_id,
        )

    def fields(self) -> dict:
        """The resource's configuration, to rebuild it elsewhere."""
        return {name: getattr(self, name) for name in type(self).model_fields}

    def store(self) -> EpisodeStore:
        return EpisodeStore(store_uri(self.study, self.store_uri or None))

    def checkpoint_layout(self) -> CheckpointLayout:
        return CheckpointLayout.at(checkpoint_root(self.checkpoint_root or None), self.study)

    def checkpoints(self) -> Path:
        """The study's checkpoint folder."""
        return self.checkpoint_layout().root

    def for_replicate(self, study: str, replicate: int) -> RecapResource:
        """The same resource for one replicate: its study namespace and its training seeds."""
        return RecapResource(**{**self.fields(), "study": study, "replicate": replicate})

    def with_eval_episodes(self, episodes: int) -> RecapResource:
        """The same resource evaluating on ``episodes`` held-out seeds (0: the preset's)."""
        return RecapResource(**{**self.fields(), "eval_episodes": episodes})

    def ledger(self) -> str:
        return self.ledger_uri or ledger_uri()
