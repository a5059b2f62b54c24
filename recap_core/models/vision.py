"""Camera images as network inputs: one encoder per camera turns a frame into one more feature vector.

The trunks (recap_core.models.backbones) take a list of per-sample feature vectors, so an image only has
to become a vector to join the observation, prompt and the other inputs: the MLP concatenates it, the
transformer makes it a token. Nothing else about the method changes (201 bins, indicator dropout, CFG).

The default encoder is small and trained from scratch with the rest of the network: a few strided
convolutions and a spatial softmax (Levine et al., 2016), which returns the image coordinates each
feature map attends to; robot tasks are mostly about where things are, and coordinates say that in a
few numbers. Training shifts every frame by a few pixels (pad + random crop, DrQ: Kostrikov et al.,
2020), which keeps a small conv net from memorising the few hundred frames of a demonstration set.
Held-out losses and inference see the frames unshifted.

Frames travel as uint8 (B, H, W, C) everywhere (store, shards, rollouts: four times less memory than
float); they become floats in [0, 1] here, inside the network.

A different encoder (e.g. a pretrained vision backbone) plugs in with ``register_encoder``; its weights
can come from a local Hugging Face folder (``VisionConfig.pretrained``), read offline.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from recap_core.models.config import (  # noqa: F401 - re-exported; no torch in config
    VisionConfig,
    architecture_dict,
    require_same_layout,
)

ENCODER_CONFIG_FILE = "config.json"
ENCODER_WEIGHTS_FILE = "model.safetensors"


# --- augmentation ------------------------------------------------------------------------------------
def random_shift(images: torch.Tensor, pad: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each image of (B, C, H, W) by up to ``pad`` pixels in x and y, filling with edge pixels.

    Pad by replicating the edges, then crop a random H x W window per sample: the scene moves a little,
    its content stays whole, and the shape is unchanged. Works on any dtype, so frames are shifted while
    still uint8 (a quarter of the bytes; measured 3x faster than shifting floats on this CPU).
    """
    if pad <= 0:
        return images
    n, _, h, w = images.shape
    rows = [images[:, :, :1].expand(-1, -1, pad, -1), images, images[:, :, -1:].expand(-1, -1, pad, -1)]
    padded = torch.cat(rows, dim=2)
    cols = [padded[..., :1].expand(-1, -1, -1, pad), padded, padded[..., -1:].expand(-1, -1, -1, pad)]
    padded = torch.cat(cols, dim=3)
    offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator).tolist()
    return torch.stack([padded[i, :, y : y + h, x : x + w] for i, (y, x) in enumerate(offsets)])


# --- encoders ----------------------------------------------------------------------------------------
class SpatialSoftmax(nn.Module):
    """(B, K, H, W) feature maps -> (B, 2K): the expected (x, y) in [-1, 1] of each map's softmax."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        b, k, h, w = features.shape
        attention = torch.softmax(features.flatten(2), dim=-1).view(b, k, h, w)
        ys = torch.linspace(-1.0, 1.0, h, device=features.device, dtype=features.dtype)
        xs = torch.linspace(-1.0, 1.0, w, device=features.device, dtype=features.dtype)
        x = (attention.sum(2) * xs).sum(-1)
        y = (attention.sum(3) * ys).sum(-1)
        return torch.cat([x, y], dim=-1)


class ConvEncoder(nn.Module):
    """Three 3x3 convolutions, spatial softmax, linear + LayerNorm -> feature_dim.

    The first convolution halves the resolution, and so does the second from 48 px up: the spatial
    softmax reads positions to a fraction of a cell from 16-24 px maps already, and every halving makes
    the later layers four times cheaper, which decides whether image training is usable on a CPU.
    """

    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        width = config.encoder_width
        second_stride = 2 if config.image_size >= 48 else 1
        self.convs = nn.Sequential(
            nn.Conv2d(config.channels, width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=second_stride, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
        )
        self.keypoints = SpatialSoftmax()
        self.out = nn.Sequential(nn.Linear(2 * width, config.feature_dim), nn.LayerNorm(config.feature_dim))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.out(self.keypoints(self.convs(images)))


EncoderFactory = Callable[[VisionConfig], nn.Module]
"""``factory(config)`` -> a module mapping float frames (B, C, H, W) in [0, 1] to (B, feature_dim)."""
ENCODERS: dict[str, EncoderFactory] = {"conv": ConvEncoder}


def register_encoder(name: str, factory: EncoderFactory) -> None:
    """Make an image encoder available by name in ``VisionConfig.encoder`` (and so in checkpoints)."""
    ENCODERS[name] = factory


def build_encoder(config: VisionConfig, load_pretrained: bool = True) -> nn.Module:
    if config.encoder not in ENCODERS:
        raise ValueError(f"unknown image encoder {config.encoder!r}; registered: {sorted(ENCODERS)}")
    encoder = ENCODERS[config.encoder](config)
    if config.pretrained and load_pretrained:
        load_pretrained_encoder(encoder, config)
    return encoder


# --- pretrained weights from a local Hugging Face folder ---------------------------------------------
def pretrained_folder(source: str) -> Path:
    """A local folder as is; otherwise a Hugging Face repo id resolved from the local cache only, so
    building a network never downloads (fetch it first with ``huggingface-cli download``)."""
    folder = Path(source).expanduser()
    if folder.is_dir():
        return folder
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(source, local_files_only=True))
    except LocalEntryNotFoundError as error:
        raise FileNotFoundError(
            f"pretrained image encoder {source!r} is neither a folder nor in the local Hugging Face cache"
        ) from error


def load_pretrained_encoder(encoder: nn.Module, config: VisionConfig) -> None:
    """Load ``config.pretrained``'s model.safetensors into ``encoder`` (strict: every tensor must fit).

    The folder's config.json, when present, must name the same encoder and feature size, so weights of
    one architecture never load into another by accident of matching shapes.
    """
    from safetensors.torch import load_model

    folder = pretrained_folder(config.pretrained)
    meta_file = folder / ENCODER_CONFIG_FILE
    if meta_file.is_file():
        meta = json.loads(meta_file.read_text())
        for key in ("encoder", "feature_dim"):
            if key in meta and meta[key] != getattr(config, key):
                raise ValueError(
                    f"pretrained encoder {config.pretrained!r} has {key} {meta[key]!r}, the architecture "
                    f"asks for {getattr(config, key)!r}"
                )
    weights = folder / ENCODER_WEIGHTS_FILE
    if not weights.is_file():
        raise FileNotFoundError(
            f"pretrained encoder {config.pretrained!r}: no {ENCODER_WEIGHTS_FILE} in {folder}"
        )
    try:
        load_model(encoder, str(weights), strict=True)
    except RuntimeError as error:
        raise ValueError(f"{weights}: {str(error).splitlines()[0]}") from None


def save_encoder(encoder: nn.Module, config: VisionConfig, folder: str | Path) -> Path:
    """Write an encoder as a Hugging Face-style folder (model.safetensors + config.json) that
    ``VisionConfig.pretrained`` can name, e.g. to reuse one task's trained encoder in another."""
    from safetensors.torch import save_model

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_model(encoder, str(folder / ENCODER_WEIGHTS_FILE))
    meta = {k: v for k, v in config.to_dict().items() if k not in ("cameras", "pretrained", "shift_pad")}
    (folder / ENCODER_CONFIG_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
    return folder


# --- the inputs of a network -------------------------------------------------------------------------
class CameraInputs(nn.Module):
    """One encoder per camera; ``features`` returns one (B, feature_dim) vector per camera, in the
    configured camera order (the order the trunk's inputs were built with)."""

    def __init__(self, config: VisionConfig, load_pretrained: bool = True) -> None:
        super().__init__()
        self.config = config
        self.encoders = nn.ModuleDict(
            {camera: build_encoder(config, load_pretrained) for camera in config.cameras}
        )

    @property
    def dims(self) -> list[int]:
        return [self.config.feature_dim] * len(self.config.cameras)

    def features(self, images: Mapping[str, torch.Tensor] | None, batch: int) -> list[torch.Tensor]:
        """``images``: camera -> uint8 frames (B, H, W, C), as stored. Empty list for a state-only net."""
        cfg = self.config
        if not cfg.cameras:
            return []
        images = images or {}
        missing = [c for c in cfg.cameras if c not in images]
        if missing:
            raise ValueError(
                f"the network expects {cfg.layout()}; no frames were given for camera(s) {missing} "
                f"(given: {sorted(images)})"
            )
        out = []
        expected = (batch, cfg.image_size, cfg.image_size, cfg.channels)
        for camera in cfg.cameras:
            frames = images[camera]
            if tuple(frames.shape) != expected:
                raise ValueError(
                    f"camera {camera!r}: frames of shape {tuple(frames.shape)}, the network expects "
                    f"{expected} ({cfg.layout()})"
                )
            frames = frames.permute(0, 3, 1, 2)  # a view: (B, C, H, W), stored channels-last
            frames = random_shift(frames, cfg.shift_pad) if self.training else frames
            frames = frames.contiguous(memory_format=self.memory_format)
            out.append(self.encoders[camera](frames.float() / 255.0))
        return out

    memory_format = torch.channels_last
    """How frames are laid out for the encoder. Channels-last (the stored (H, W, C) order) lets the CPU's
    convolution kernels run without reordering: 1.7x the training samples/s of the 32-wide conv
    encoder here, same results to float rounding; ``recap bench core`` measures ``contiguous_format``
    beside it."""


def image_tensors(images: Mapping[str, Any], cameras: Sequence[str]) -> dict[str, torch.Tensor]:
    """uint8 torch tensors over numpy frames (shared, not copied) for the cameras a network reads."""
    import numpy as np

    return {c: torch.from_numpy(np.ascontiguousarray(images[c], dtype=np.uint8)) for c in cameras}
