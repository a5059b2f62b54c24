"""Trusting a checkpoint before using it, failing closed.

A checkpoint's name is its content sha256 (format.py): config.json records it, and every read recomputes
it from the weights file and the behaviour part of config.json. Flipped bytes, weights scaled by 3, an
edited ``flow_steps``, ``conditioned``, normalisation statistic, method or parent sha all change it and
are refused, naming the file. A checkpoint that records no content sha256 (written before it existed,
or with the key deleted) is refused too, unless the reader allows legacy checkpoints explicitly
(``allow_legacy=True``, or RECAP_ALLOW_LEGACY_CHECKPOINTS=1); it is then named as lineage named it then
(files_sha256) and checked against its recorded weights sha256 when it has one. Every tensor,
normalisation statistics included, must be finite: a NaN weight otherwise loads silently and evaluates
to 0% success.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from recap_core.checkpoints.external import is_external, verify_external
from recap_core.checkpoints.format import (
    CONFIG_FILE,
    CONTENT_KEY,
    WEIGHTS_FILE,
    WEIGHTS_KEY,
    content_sha256,
    file_sha256,
    files_sha256,
    read_checkpoint_config,
)

if TYPE_CHECKING:
    from torch import nn

LEGACY_VARIABLE = "RECAP_ALLOW_LEGACY_CHECKPOINTS"


class CheckpointIntegrityError(ValueError):
    """A checkpoint's files are not what its recorded content sha256 says (or it records none)."""


@dataclass(frozen=True)
class Verified:
    """What a verification found: the checkpoint's name and whether it is a legacy one."""

    sha256: str
    weights_sha256: str
    legacy: bool


def legacy_allowed(allow_legacy: bool | None = None) -> bool:
    if allow_legacy is not None:
        return allow_legacy
    return os.environ.get(LEGACY_VARIABLE, "") not in ("", "0")


def verify_checkpoint(path: str | Path, allow_legacy: bool | None = None) -> Verified:
    """Recompute the content sha256 of the checkpoint at ``path`` and compare it with the recorded one
    (an external trainer's checkpoint: every file against its manifest, checkpoints/external.py)."""
    path = Path(path)
    if is_external(path):
        sha = verify_external(path)
        return Verified(sha, sha, legacy=False)
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise FileNotFoundError(f"checkpoint {path} has no {WEIGHTS_FILE}")
    config = read_checkpoint_config(path)
    actual_weights = file_sha256(weights)
    recorded = config.get(CONTENT_KEY)
    if recorded is None:
        if not legacy_allowed(allow_legacy):
            raise CheckpointIntegrityError(
                f"{path / CONFIG_FILE}: no {CONTENT_KEY} (written before its config was covered, or the key "
                "was removed), so its weights and config cannot be verified; refusing to load it (allow a "
                f"legacy checkpoint explicitly: {LEGACY_VARIABLE}=1 or --allow-legacy)"
            )
        recorded_weights = config.get(WEIGHTS_KEY)
        if recorded_weights is not None and recorded_weights != actual_weights:
            raise CheckpointIntegrityError(_weights_message(weights, actual_weights, recorded_weights))
        return Verified(files_sha256(path), actual_weights, legacy=True)
    if config.get(WEIGHTS_KEY) != actual_weights:
        raise CheckpointIntegrityError(_weights_message(weights, actual_weights, config.get(WEIGHTS_KEY)))
    actual = content_sha256(config, actual_weights)
    if actual != recorded:
        raise CheckpointIntegrityError(
            f"{path / CONFIG_FILE}: content sha256 {actual[:12]} does not match the {str(recorded)[:12]} it "
            "records; a field that determines the checkpoint's behaviour was edited, refusing to load it"
        )
    return Verified(actual, actual_weights, legacy=False)


def _weights_message(file: Path, actual: str, recorded: str | None) -> str:
    return (
        f"{file}: sha256 {actual[:12]} does not match the {str(recorded)[:12]} recorded in {CONFIG_FILE}; "
        "the weights were modified or corrupted, refusing to load"
    )


def checkpoint_sha256(path: str | Path, allow_legacy: bool | None = None) -> str:
    """The verified name of the checkpoint at ``path``: what lineage records (derived rows, rollouts'
    collected_by, ledger rows, a child's parent)."""
    return verify_checkpoint(path, allow_legacy).sha256


def weights_sha256(path: str | Path, allow_legacy: bool | None = None) -> str:
    """sha256 of the verified weights file alone: what identifies a trained network in the ledger."""
    return verify_checkpoint(path, allow_legacy).weights_sha256


def require_finite_tensors(module: nn.Module, path: str | Path) -> None:
    """Every parameter and buffer (normalisation statistics included) must be finite."""
    for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
        if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
            bad = tensor[~tensor.isfinite()].flatten()[0].item()
            shown = "nan" if math.isnan(bad) else str(bad)
            raise ValueError(f"checkpoint {path}: tensor {name!r} holds {shown}; refusing non-finite weights")
