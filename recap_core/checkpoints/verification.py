"""Trusting a checkpoint before using it: the recorded sha256 of its weights, and finite tensors.

config.json records the sha256 of model.safetensors, and a file that does not match it (flipped bytes, a
truncated copy) is refused; every tensor, normalisation statistics included, must be finite. A NaN
weight otherwise loads silently and evaluates to 0% success.
"""

from __future__ import annotations

import math
from pathlib import Path

from torch import nn

from recap_core.checkpoints.format import CONFIG_FILE, WEIGHTS_FILE, file_sha256, read_checkpoint_config


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
