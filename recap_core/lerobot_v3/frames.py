"""Camera frames as a LeRobot dataset keeps them: encoded bytes (PNG by default), their size, and the
per-channel statistics LeRobot records for image and video features. Pillow only."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError


def png_bytes(frame: np.ndarray) -> bytes:
    """Lossless PNG of one (H, W, 3) uint8 frame; compress_level 1: encoding speed over a few percent of
    size (the same bytes as ``recap_core.sim.cameras.png_bytes``, so recorded and simulated frames agree)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def decode_frames(encoded: Sequence[bytes]) -> np.ndarray:
    """(T, H, W, 3) uint8 from encoded frames (PNG or JPEG)."""

    def rgb(data: bytes) -> np.ndarray:
        image = Image.open(io.BytesIO(data))
        return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))

    return np.stack([rgb(b) for b in encoded])


def image_shape(encoded: bytes) -> list[int] | None:
    """[height, width, channels] of an encoded frame, or None if it is not an image Pillow can read."""
    try:
        with Image.open(io.BytesIO(encoded)) as image:
            return [image.height, image.width, len(image.getbands())]
    except (UnidentifiedImageError, OSError):
        return None


def sampled_pixels(encoded: Sequence[bytes], samples: int = 100) -> np.ndarray | None:
    """Up to ``samples`` evenly spaced frames of an episode as pixels (LeRobot also samples image features
    for their statistics), or None when a frame is not an image Pillow can read."""
    if not encoded:
        return None
    picks = np.unique(np.linspace(0, len(encoded) - 1, min(samples, len(encoded))).round().astype(int))
    try:
        return decode_frames([encoded[i] for i in picks])
    except (UnidentifiedImageError, OSError, ValueError):
        return None


class CameraStats:
    """Per-channel pixel statistics of each camera, which LeRobot keeps in stats.json for image and video
    features (values scaled to [0, 1], shape (3, 1, 1)) and policies use to normalise camera inputs.
    Accumulated as sums, so no camera is held in memory; a camera with an unreadable frame gets none."""

    def __init__(self) -> None:
        self.totals: dict[str, dict[str, np.ndarray | int]] = {}
        self.unreadable: set[str] = set()

    def add(self, camera: str, pixels: np.ndarray | None) -> None:
        if pixels is None or camera in self.unreadable:
            self.unreadable.add(camera)
            return
        values = pixels.reshape(-1, pixels.shape[-1]).astype(np.float64) / 255.0
        total = self.totals.setdefault(
            camera,
            {"frames": 0, "pixels": 0, "sum": 0.0, "squares": 0.0, "min": np.inf, "max": -np.inf},
        )
        total["frames"] += len(pixels)
        total["pixels"] += len(values)
        total["sum"] = total["sum"] + values.sum(axis=0)
        total["squares"] = total["squares"] + np.square(values).sum(axis=0)
        total["min"] = np.minimum(total["min"], values.min(axis=0))
        total["max"] = np.maximum(total["max"], values.max(axis=0))

    def to_json(self, feature_prefix: str) -> dict[str, dict[str, list]]:
        out = {}
        for camera, total in self.totals.items():
            if camera in self.unreadable:
                continue
            mean = total["sum"] / total["pixels"]
            std = np.sqrt(np.maximum(total["squares"] / total["pixels"] - np.square(mean), 0.0))
            per_channel = {"min": total["min"], "max": total["max"], "mean": mean, "std": std}
            out[f"{feature_prefix}{camera}"] = {
                **{name: value.reshape(3, 1, 1).tolist() for name, value in per_channel.items()},
                "count": [int(total["frames"])],
            }
        return out
