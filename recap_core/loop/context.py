"""One step's world: where its study's episodes, checkpoints and ledger rows live, and the settings it runs.

Built once per step (by the Dagster resource, a notebook or a script) and handed to every stage, so no
stage re-reads a preset or rebuilds a path, and every process of one step (torchrun ranks) works with the
same resolved settings: ``to_dict`` / ``from_dict`` carry them across a process boundary unchanged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recap_core.checkpoints.layout import CheckpointLayout
from recap_core.checkpoints.mirror import CheckpointMirror
from recap_core.locations import checkpoint_root, ledger_uri, store_uri
from recap_core.loop.settings import LoopSettings, settings_from_record
from recap_core.store import EpisodeStore


@dataclass(frozen=True)
class RunContext:
    """The study's episode store, its checkpoint layout, the metrics ledger, the resolved settings and
    the id of the run the step belongs to (empty outside a pipeline run)."""

    store: EpisodeStore
    settings: LoopSettings
    checkpoints: CheckpointLayout
    ledger_uri: str
    run_id: str = ""

    @classmethod
    def for_study(
        cls,
        settings: LoopSettings,
        *,
        store_root: str | None = None,
        checkpoints_root: str | None = None,
        ledger: str | None = None,
        run_id: str = "",
    ) -> RunContext:
        """The settings' study at its default locations (recap_core/locations.py) unless roots are given;
        a named study lives in its own studies/<name> folder under each root."""
        study = settings.study
        return cls(
            store=EpisodeStore(store_uri(study, store_root)),
            settings=settings,
            checkpoints=CheckpointLayout.at(checkpoint_root(checkpoints_root), study),
            ledger_uri=ledger or ledger_uri(),
            run_id=run_id,
        )

    @property
    def study(self) -> str:
        return self.settings.study

    def settings_record(self) -> dict[str, Any]:
        """The resolved settings as a run records them (JSON-ready)."""
        return self.settings.to_dict()

    def settings_sha256(self) -> str:
        """A short name for exactly these settings: two runs with the same one ran the same settings."""
        canonical = json.dumps(self.settings_record(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        mirror = self.checkpoints.mirror
        return {
            "store_uri": self.store.uri,
            "settings": self.settings_record(),
            "checkpoint_root": str(self.checkpoints.root),
            "checkpoint_mirror_uri": mirror.uri if mirror else None,
            "ledger_uri": self.ledger_uri,
            "run_id": self.run_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunContext:
        root = Path(data["checkpoint_root"])
        uri = data.get("checkpoint_mirror_uri")
        return cls(
            store=EpisodeStore(data["store_uri"]),
            settings=settings_from_record(data["settings"]),
            checkpoints=CheckpointLayout(root, CheckpointMirror(root, uri) if uri else None),
            ledger_uri=data["ledger_uri"],
            run_id=data.get("run_id", ""),
        )
