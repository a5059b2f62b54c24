"""Checkpoint directories: model.safetensors + config.json, never pickle.

config.json records everything needed to rebuild and trust a model: kind, architecture, normalisation
statistics (also stored as tensors in the safetensors file, which is what loading uses), method,
training configuration and summary, and the parent checkpoint (path and sha256) it was finetuned from.
The checkpoint's sha256 covers both files, so lineage can prove which weights produced which labels.

Loading verifies before trusting: config.json records the sha256 of model.safetensors, and a file that
does not match it (flipped bytes, a truncated copy) is refused; every tensor, normalisation statistics
included, must be finite. A NaN weight otherwise loads silently and evaluates to 0% success.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from safetensors.torch import load_model, save_model
from torch import nn

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
LINEAGE_FILE = "lineage.json"  # the tables and rows a pipeline stage trained it on, beside the two
FORMAT = "recap-checkpoint"
FORMAT_VERSION = 1


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
    require_finite_tensors(module, directory)
    save_model(module, str(directory / WEIGHTS_FILE), metadata={"format": FORMAT, "kind": kind})
    config["weights_sha256"] = file_sha256(directory / WEIGHTS_FILE)
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True))
    return CheckpointRef(str(directory.resolve()), checkpoint_sha256(directory))


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


def verify_weights_file(path: str | Path) -> None:
    """Refuse a model.safetensors whose sha256 differs from the one config.json recorded at save time.

    Checkpoints written before the sha was recorded have none and are only checked for finiteness.
    """
    path = Path(path)
    file = path / WEIGHTS_FILE
    if not file.is_file():
        raise FileNotFoundError(f"checkpoint {path} has no {WEIGHTS_FILE}")
    recorded = read_checkpoint_config(path).get("weights_sha256")
    if recorded is not None:
        actual = file_sha256(file)
        if actual != recorded:
            raise ValueError(
                f"{file}: sha256 {actual[:12]} does not match the {recorded[:12]} recorded in {CONFIG_FILE}; "
                f"the weights were modified or corrupted, refusing to load"
            )


def require_finite_tensors(module: nn.Module, path: str | Path) -> None:
    """Every parameter and buffer (normalisation statistics included) must be finite."""
    for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
        if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
            bad = tensor[~tensor.isfinite()].flatten()[0].item()
            shown = "nan" if math.isnan(bad) else str(bad)
            raise ValueError(f"checkpoint {path}: tensor {name!r} holds {shown}; refusing non-finite weights")


def load_weights(module: nn.Module, path: str | Path) -> None:
    """Load model.safetensors into ``module`` strictly, after verifying its sha256; then check finiteness."""
    verify_weights_file(path)
    file = Path(path) / WEIGHTS_FILE
    try:
        missing, unexpected = load_model(module, str(file), strict=True)
    except RuntimeError as error:
        raise ValueError(f"{file}: {str(error).splitlines()[0]}") from None
    except Exception as error:  # safetensors raises its own error types for malformed headers
        if type(error).__module__.startswith("safetensors"):
            raise ValueError(f"{file}: not a readable safetensors file ({error})") from None
        raise
    if missing or unexpected:
        raise ValueError(f"checkpoint {path}: missing tensors {missing}, unexpected tensors {unexpected}")
    require_finite_tensors(module, path)
