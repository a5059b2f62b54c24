"""Where each stage's checkpoint lives, and how it gets there without ever being half-written.

Paths are a pure function of (kind, task, iteration, method), so a downstream stage finds its input
without a registry, and re-materialising a stage replaces exactly its own checkpoint. Each checkpoint
directory also holds ``lineage.json``: the table versions and rows it was trained on.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

LINEAGE_FILE = "lineage.json"


def pretrained_path(root: Path, kind: str) -> Path:
    """V_pre or pi_pre: ``kind`` is "value" or "policy"."""
    return root / kind / "pretrained"


def iteration_path(root: Path, kind: str, task: str, iteration: int, method: str = "recap") -> Path:
    """V^k or pi^k of one task (baselines get their own method folder)."""
    return root / kind / method / task / f"iteration-{iteration:03d}"


@contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield a scratch directory that replaces ``target`` only if the block succeeds.

    A failed training run leaves the previous checkpoint untouched; readers never see a directory
    whose weights and config come from different runs.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        yield scratch
        retired = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        if target.exists():
            target.rename(retired)
        scratch.rename(target)
        shutil.rmtree(retired, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def write_lineage(directory: Path, lineage: dict[str, Any]) -> None:
    (directory / LINEAGE_FILE).write_text(json.dumps(lineage, indent=2, sort_keys=True, default=str))


def read_lineage(directory: Path) -> dict[str, Any]:
    file = directory / LINEAGE_FILE
    if not file.is_file():
        raise FileNotFoundError(
            f"{directory} has no {LINEAGE_FILE}: materialise the stage that writes it first"
        )
    return json.loads(file.read_text())


def require_checkpoint(path: Path, what: str, produced_by: str) -> Path:
    """Fail with the stage to run when an upstream checkpoint is missing."""
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{what} checkpoint missing at {path}: materialise {produced_by} first")
    return path
