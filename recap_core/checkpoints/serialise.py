"""Writing a network into the checkpoint format and reading its weights back, verified."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from safetensors.torch import load_model, save_model
from torch import nn

from recap_core.checkpoints.format import (
    CONFIG_FILE,
    CONTENT_KEY,
    FORMAT,
    FORMAT_VERSION,
    WEIGHTS_FILE,
    WEIGHTS_KEY,
    CheckpointRef,
    content_sha256,
    file_sha256,
)
from recap_core.checkpoints.verification import require_finite_tensors, verify_checkpoint

# One metadata entry: safetensors keeps its header's metadata in a hash map, so two entries were written
# in either order, and the same tensors gave weights files (and checkpoint names) that differed by run.
WEIGHTS_METADATA = {"format": FORMAT}


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
    """Write the checkpoint directory (created if needed; existing files are replaced), named by its
    content sha256: the same tensors and behaviour fields give the same bytes and the same name."""
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
    save_model(module, str(directory / WEIGHTS_FILE), metadata=WEIGHTS_METADATA)
    config[WEIGHTS_KEY] = file_sha256(directory / WEIGHTS_FILE)
    config[CONTENT_KEY] = content_sha256(config, config[WEIGHTS_KEY])
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True))
    return CheckpointRef(str(directory.resolve()), config[CONTENT_KEY])


def load_weights(module: nn.Module, path: str | Path, allow_legacy: bool | None = None) -> str:
    """Load model.safetensors into ``module`` strictly, after verifying the checkpoint's content sha256;
    then check finiteness. Returns the verified name."""
    verified = verify_checkpoint(path, allow_legacy)
    load_verified_weights(module, path)
    return verified.sha256


def load_verified_weights(module: nn.Module, path: str | Path) -> None:
    """Load the weights of a checkpoint the caller has just verified (strict tensor names, finite)."""
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


def build_network(kind: str, path: str | Path, build):
    """The network a verified checkpoint's config describes; a config that does not describe one of
    ``kind`` (another kind's architecture, a missing field) is refused naming the file."""
    try:
        return build()
    except (TypeError, KeyError, ValueError) as error:
        raise ValueError(
            f"{Path(path) / CONFIG_FILE}: its architecture is not a {kind} network's ({error})"
        ) from None
