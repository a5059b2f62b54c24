"""Writing a network into the checkpoint format and reading its weights back, verified."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from safetensors.torch import load_model, save_model
from torch import nn

from recap_core.checkpoints.format import (
    CONFIG_FILE,
    FORMAT,
    FORMAT_VERSION,
    WEIGHTS_FILE,
    CheckpointRef,
    checkpoint_sha256,
    file_sha256,
)
from recap_core.checkpoints.verification import require_finite_tensors, verify_weights_file


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
