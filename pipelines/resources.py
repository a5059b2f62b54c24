"""The one resource every asset uses: where the tables, checkpoints and ledger live, and the loop settings."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import dagster as dg

from recap_core.loop.settings import LoopSettings, preset
from recap_core.settings import checkpoint_dir, ledger_uri, store_uri
from recap_core.store import EpisodeStore


class RecapResource(dg.ConfigurableResource):
    """Store URIs and the RECAP preset; empty fields fall back to $RECAP_HOME-based defaults."""

    preset: str = "fast"
    tasks: list[str] = []  # noqa: RUF012 - pydantic copies field defaults per instance
    store_uri: str = ""
    checkpoint_root: str = ""
    ledger_uri: str = ""
    lerobot_drop_folder: str = ""

    def settings(self) -> LoopSettings:
        settings = preset(self.preset)
        if self.tasks:
            settings = dataclasses.replace(settings, tasks=tuple(self.tasks))
        return settings

    def store(self) -> EpisodeStore:
        return EpisodeStore(self.store_uri or store_uri())

    def checkpoints(self) -> Path:
        return Path(self.checkpoint_root or checkpoint_dir())

    def ledger(self) -> str:
        return self.ledger_uri or ledger_uri()
