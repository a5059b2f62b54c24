"""The checkpoint format: model.safetensors + config.json (never pickle), and the sha256 that names it.

config.json records everything needed to rebuild and trust a model: kind, architecture, normalisation
statistics (also stored as tensors in the safetensors file, which is what loading uses), method,
training configuration and summary, and the parent checkpoint (path and sha256) it was finetuned from.

A checkpoint is named by its content sha256: one hash over the weights file and every part of
config.json that determines what the checkpoint is and does (architecture, normalisation, method,
training configuration and losses, reward, parent's sha256). It leaves out only what says when and where
(``RECORD_ONLY``: the creation time, wall-clock training times, absolute paths), so the same inputs and
seed give the same name on every run, and any edit of the weights or of a behaviour field changes it.
The name is recorded in config.json (``content_sha256``) and checked on every read
(recap_core/checkpoints/verification.py).
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
FORMAT_VERSION = 2  # 2: config.json records content_sha256 (1: weights_sha256 only, or nothing)
CONTENT_KEY = "content_sha256"
WEIGHTS_KEY = "weights_sha256"
RECORD_ONLY = {
    (CONTENT_KEY,): "the name itself",
    ("created_at",): "when it was written",
    ("parent", "path"): "where the parent lay on the machine that trained it (its sha256 is covered)",
    ("training", "history", "seconds"): "wall-clock training time",
    ("training", "history", "samples_per_second"): "wall-clock training speed",
    ("training", "history", "extra", "ppo_reference"): "where the PPO reference lay (its sha256 is covered)",
}
"""config.json fields outside the content sha256: when and where, never what."""


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


def files_sha256(path: str | Path) -> str:
    """The name of a checkpoint written before content_sha256 existed: sha256 over model.safetensors then
    config.json (each length-prefixed), as lineage recorded it then."""
    path = Path(path)
    digest = hashlib.sha256()
    for name in (WEIGHTS_FILE, CONFIG_FILE):
        file = path / name
        if not file.is_file():
            raise FileNotFoundError(f"checkpoint {path} has no {name}")
        digest.update(f"{name}:{file.stat().st_size}\n".encode())
        _hash_file(digest, file)
    return digest.hexdigest()


def content_sha256(config: dict[str, Any], weights_sha: str) -> str:
    """The content sha256 of a checkpoint whose config.json holds ``config`` and whose weights file
    hashes to ``weights_sha``: what the checkpoint is, without when or where it was made."""
    covered = json.loads(json.dumps(config))  # the config exactly as config.json stores it
    covered[WEIGHTS_KEY] = weights_sha
    for path in RECORD_ONLY:
        _drop(covered, path)
    canonical = json.dumps(covered, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(f"{FORMAT}:{canonical}".encode()).hexdigest()


def _drop(mapping: dict[str, Any], path: tuple[str, ...]) -> None:
    for key in path[:-1]:
        mapping = mapping.get(key) if isinstance(mapping, dict) else None
        if not isinstance(mapping, dict):
            return
    mapping.pop(path[-1], None)


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
