"""Checkpoint directories: model.safetensors + config.json, never pickle.

config.json records everything needed to rebuild and trust a model: kind, architecture, normalisation
statistics (also stored as tensors in the safetensors file, which is what loading uses), method,
training configuration and summary, and the parent checkpoint (path and sha256) it was finetuned from.
The checkpoint's sha256 covers both files, so lineage can prove which weights produced which labels.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from safetensors.torch import load_model, save_model
from torch import nn

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT = "recap-checkpoint"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class CheckpointRef:
    """Where a checkpoint lives and the sha256 of its contents."""

    path: str
    sha256: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "sha256": self.sha256}


def checkpoint_sha256(path: str | Path) -> str:
    """sha256 over model.safetensors then config.json (each length-prefixed)."""
    path = Path(path)
    digest = hashlib.sha256()
    for name in (WEIGHTS_FILE, CONFIG_FILE):
        file = path / name
        if not file.is_file():
            raise FileNotFoundError(f"checkpoint {path} has no {name}")
        digest.update(f"{name}:{file.stat().st_size}\n".encode())
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def save_checkpoint(
    module: nn.Module,
    directory: str | Path,
    *,
    kind: str,
    architecture: dict,
    normalisation: dict,
    method: str,
    training: dict,
    parent: CheckpointRef | None,
    extra: dict | None = None,
) -> CheckpointRef:
    """Write the checkpoint directory (created if needed; existing files are replaced)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "method": method,
        "architecture": architecture,
        "normalisation": normalisation,
        "training": training,
        "parent": parent.to_dict() if parent else None,
        "created_at": datetime.now(UTC).isoformat(),
        **(extra or {}),
    }
    save_model(module, str(directory / WEIGHTS_FILE), metadata={"format": FORMAT, "kind": kind})
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True))
    return CheckpointRef(str(directory.resolve()), checkpoint_sha256(directory))


def read_checkpoint_config(path: str | Path, kind: str | None = None) -> dict:
    """config.json of a checkpoint, checked for format and (optionally) kind."""
    file = Path(path) / CONFIG_FILE
    if not file.is_file():
        raise FileNotFoundError(f"{path} is not a checkpoint directory: no {CONFIG_FILE}")
    config = json.loads(file.read_text())
    if config.get("format") != FORMAT:
        raise ValueError(f"{file}: column 'format' = {config.get('format')!r}, expected {FORMAT!r}")
    if kind is not None and config.get("kind") != kind:
        raise ValueError(f"{file}: column 'kind' = {config.get('kind')!r}, expected {kind!r}")
    return config


def load_weights(module: nn.Module, path: str | Path) -> None:
    """Load model.safetensors into ``module`` strictly (every tensor must match)."""
    missing, unexpected = load_model(module, str(Path(path) / WEIGHTS_FILE), strict=True)
    if missing or unexpected:
        raise ValueError(f"checkpoint {path}: missing tensors {missing}, unexpected tensors {unexpected}")
