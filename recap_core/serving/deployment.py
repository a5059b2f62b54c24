"""The serving pointer: which checkpoint a task's robots get, every version it pointed at, and rollback.

One JSON file per task (``<checkpoint root>/serving/<task>/deployed.json``) holds the history of
deployments, newest last; the current one is the last. It is replaced atomically (a temporary file
renamed over it) under an exclusive lock, so a server reading it mid-publish sees the old or the new
version, never half of one, and two publishers never lose each other's entry. The checkpoint itself is
never copied: the pointer names its directory and sha256, and ``recap serve`` refuses a checkpoint whose
files no longer hash to it.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recap_core.names import require_task_name

POINTER_FILE = "deployed.json"


@dataclass(frozen=True)
class Deployment:
    """One published version: the checkpoint, what it is, and why it was published."""

    checkpoint: str
    sha256: str
    task: str
    iteration: int
    method: str = "recap"
    beta: float = 1.0
    reason: str = "published"
    gate: dict[str, Any] = field(default_factory=dict)
    published_at: str = ""
    version: int = 0
    restores: int = 0  # a rollback: the version it published again (0: a new publication)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Deployment:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})


class DeploymentPointer:
    """The pointer of one task under a checkpoint root."""

    def __init__(self, root: str | Path, task: str) -> None:
        self.task = require_task_name(task)
        self.folder = Path(root) / "serving" / self.task
        self.path = self.folder / POINTER_FILE

    def history(self) -> list[Deployment]:
        """Every deployment, oldest first (empty before the first publish)."""
        if not self.path.is_file():
            return []
        data = json.loads(self.path.read_text())
        return [Deployment.from_dict(entry) for entry in data["history"]]

    def current(self) -> Deployment | None:
        history = self.history()
        return history[-1] if history else None

    def publish(self, deployment: Deployment) -> Deployment:
        """Make ``deployment`` the current version; returns it with its version number and time."""
        if deployment.task != self.task:
            raise ValueError(f"a deployment of task {deployment.task!r} cannot go to {self.task!r}'s pointer")
        with self._locked():
            history = self.history()
            stamped = Deployment.from_dict(
                {
                    **deployment.to_dict(),
                    "version": (history[-1].version + 1) if history else 1,
                    "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
                }
            )
            self._write([*history, stamped])
        return stamped

    def rollback(self) -> Deployment:
        """Publish again the version published before the current one, as a new entry (history is kept).

        Rolling back twice walks further back (c -> b -> a), never forth again: a rollback entry stands
        for the version it restored, and the one before that is what the next rollback restores.
        """
        with self._locked():
            history = self.history()
            current = history[-1] if history else None
            origin = (current.restores or current.version) if current else 0
            earlier = [
                entry
                for entry in history
                if not entry.restores and entry.version < origin and entry.sha256 != current.sha256
            ]
            if not earlier:
                raise ValueError(
                    f"task {self.task!r}: no version published before the current one to roll back to"
                    f" ({len(history)} deployment(s))"
                )
            previous = earlier[-1]
            entry = Deployment.from_dict(
                {
                    **previous.to_dict(),
                    "reason": f"rollback from version {current.version}",
                    "version": current.version + 1,
                    "restores": previous.version,
                    "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
                }
            )
            self._write([*history, entry])
        return entry

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _write(self, history: list[Deployment]) -> None:
        temporary = self.path.with_name(f".{POINTER_FILE}.{os.getpid()}.tmp")
        temporary.write_text(
            json.dumps({"task": self.task, "history": [d.to_dict() for d in history]}, indent=2)
        )
        os.replace(temporary, self.path)
