"""The camera frames a network reads, taken from steps and checked against its layout before use.

A wrong frame size or a missing camera would otherwise surface as a shape error deep inside a
convolution; these checks name the camera and both layouts instead.
"""

from __future__ import annotations

import torch

from recap_core.models.vision import VisionConfig, image_tensors
from recap_core.steps import StepArrays


def step_images(steps: StepArrays, vision: VisionConfig) -> dict[str, torch.Tensor]:
    """camera -> uint8 frames (N, H, W, C) of every step, for the cameras ``vision`` names (none for a
    state-only network). The tensors share memory with the steps' arrays."""
    if not vision.enabled:
        return {}
    missing = [c for c in vision.cameras if c not in steps.images]
    if missing:
        raise ValueError(
            f"the network expects {vision.layout()}, but the steps carry no frames of camera(s) {missing} "
            f"(loaded: {sorted(steps.images)}): load them with the steps "
            "(EpisodeStore.load_steps(cameras=...))"
        )
    expected = (vision.image_size, vision.image_size, vision.channels)
    for camera in vision.cameras:
        shape = tuple(steps.images[camera].shape[1:])
        if shape != expected:
            raise ValueError(
                f"camera {camera!r}: stored frames are {shape} (H, W, C); the network expects {expected} "
                f"({vision.layout()})"
            )
    return image_tensors(steps.images, vision.cameras)


def batch_images(images: dict[str, torch.Tensor], index: torch.Tensor) -> dict[str, torch.Tensor] | None:
    """The frames of the sampled steps (None when the network reads no camera)."""
    return {camera: frames[index] for camera, frames in images.items()} if images else None
