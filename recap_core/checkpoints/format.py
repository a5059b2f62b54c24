"""The checkpoint format: model.safetensors + config.json (never pickle), and the sha256 that names it.

config.json records everything needed to rebuild and trust a model: kind, architecture, normalisation
statistics (also stored as tensors in the safetensors file, which is what loading uses), method,
training configuration and summary, and the parent checkpoint (path and sha256) it was finetuned from.
The checkpoint's sha256 covers both files, so lineage can prove which weights produced which labels.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
LINEAGE_FILE = "lineage.json"  # the tables and rows a pipeline stage trained it on, beside the two
MODEL_CARD_FILE = "README.md"  # the Hub's model card
TRANSFER_FILES = [WEIGHTS_FILE, CONFIG_FILE, LINEAGE_FILE, MODEL_CARD_FILE]  # what travels to the Hub
FORMAT = "recap-checkpoint"
FORMAT_VERSION = 1


class Recordable(Protocol):
    """What a checkpoint records of how it was made: a training config or history, as JSON."""

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class CheckpointRef:
    """Where a checkpoint lives and the sha256 of its contents."""

    path: str
    sha256: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "sha256": self.sha256}


def _hash_file(digest, file: Path) -> None:
    with file.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)


def file_sha256(file: Path) -> str:
    digest = hashlib.sha256()
    _hash_file(digest, file)
    return digest.hexdigest()


def checkpoint_sha256(path: str | Path) -> str:
    """sha256 over model.safetensors then config.json (each length-prefixed)."""
    path = Path(path)
    digest = hashlib.sha256()
    for name in (WEIGHTS_FILE, CONFIG_FILE):
        file = path / name
        if not file.is_file():
            raise FileNotFoundError(f"checkpoint {path} has no {name}")
        digest.update(f"{name}:{file.stat().st_size}\n".encode())
        _hash_file(digest, file)
    return digest.hexdigest()


def weights_sha256(path: str | Path) -> str:
    """sha256 of the weights file alone: what identifies a trained network across re-saves."""
    return read_checkpoint_config(path).get("weights_sha256") or file_sha256(Path(path) / WEIGHTS_FILE)


def read_checkpoint_config(path: str | Path, kind: str | None = None) -> dict:
    """config.json of a checkpoint, checked for format and (optionally) kind."""
    file = Path(path) / CONFIG_FILE
    if not file.is_file():
        raise FileNotFoundError(f"{path} is not a checkpoint directory: no {CONFIG_FILE}")
    try:
        config = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{file}: not valid JSON ({error}); the checkpoint is corrupted") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        found = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise ValueError(f"{file}: column 'format' = {found!r}, expected {FORMAT!r}")
    if kind is not None and config.get("kind") != kind:
        raise ValueError(f"{file}: column 'kind' = {config.get('kind')!r}, expected {kind!r}")
    return config
