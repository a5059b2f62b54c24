"""What a robot sends: openpi's observation keys, checked against the checkpoint before it is sampled.

openpi's convention is one flat dict per request: ``observation/state`` (the proprioceptive vector),
``observation/<camera>`` (uint8 H x W x 3 frames) and ``prompt`` (the task's language instruction). A
request may also carry a batch: states (B, obs_dim), frames (B, H, W, 3) and B prompts, which is how the
simulator's evaluator sends its parallel environments in one round trip. Every mismatch is refused with
a message naming the key, what the checkpoint expects and what came.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

STATE_KEY = "observation/state"
PROMPT_KEY = "prompt"
CAMERA_KEY_PREFIX = "observation/"


class ObservationError(ValueError):
    """A request the served policy cannot act on; its message goes back to the robot as is."""


@dataclass(frozen=True)
class ObservationKeys:
    """The request's key for the state, the prompt and each camera (default: openpi's convention)."""

    state: str = STATE_KEY
    prompt: str = PROMPT_KEY
    cameras: Mapping[str, str] = field(default_factory=dict)

    def camera(self, name: str) -> str:
        return self.cameras.get(name, f"{CAMERA_KEY_PREFIX}{name}")

    def to_dict(self, camera_names: tuple[str, ...]) -> dict[str, Any]:
        return {
            "state": self.state,
            "prompt": self.prompt,
            "cameras": {name: self.camera(name) for name in camera_names},
        }


@dataclass(frozen=True)
class ExpectedObservation:
    """What the checkpoint reads: the state's length and, per camera, a square frame size."""

    obs_dim: int
    cameras: tuple[str, ...] = ()
    image_size: int = 0
    channels: int = 3


@dataclass(frozen=True)
class Observation:
    """One request, batched: states (B, obs_dim) float32, B prompts, frames per camera (B, H, W, C)."""

    states: np.ndarray
    prompts: list[str]
    images: dict[str, np.ndarray]
    batched: bool


def parse_observation(message: Any, keys: ObservationKeys, expected: ExpectedObservation) -> Observation:
    """The request as arrays the policy takes, or an ``ObservationError`` saying what is wrong."""
    if not isinstance(message, Mapping):
        raise ObservationError(f"a request must be a dict of observations, got {type(message).__name__}")
    given = sorted(str(key) for key in message)
    states = _array(message, keys.state, given)
    if states.dtype.kind not in "fiu":
        raise ObservationError(f"{keys.state!r} must be numbers, got dtype {states.dtype}")
    batched = states.ndim == 2
    if states.ndim not in (1, 2) or states.shape[-1] != expected.obs_dim:
        raise ObservationError(
            f"{keys.state!r} must have shape ({expected.obs_dim},) or (B, {expected.obs_dim}) for this "
            f"checkpoint, got {tuple(states.shape)}"
        )
    states = np.array(states, dtype=np.float32).reshape(-1, expected.obs_dim)  # a writable copy for torch
    if not np.isfinite(states).all():
        raise ObservationError(f"{keys.state!r} holds NaN or infinite values")
    prompts = _prompts(message, keys.prompt, len(states), batched, given)
    images = {
        name: _frames(message, keys.camera(name), expected, len(states), batched, given)
        for name in expected.cameras
    }
    return Observation(states, prompts, images, batched)


def _array(message: Mapping, key: str, given: list[str]) -> np.ndarray:
    if key not in message:
        raise ObservationError(f"the request has no {key!r} (keys given: {given})")
    value = message[key]
    if isinstance(value, np.ndarray):
        return value
    try:
        return np.asarray(value)
    except (TypeError, ValueError):
        raise ObservationError(f"{key!r} is not an array: {type(value).__name__}") from None


def _prompts(message: Mapping, key: str, count: int, batched: bool, given: list[str]) -> list[str]:
    if key not in message:
        raise ObservationError(f"the request has no {key!r}: send the task's prompt (keys given: {given})")
    value = message[key]
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        return [value] * count
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not batched or not isinstance(value, list | tuple) or len(value) != count:
        raise ObservationError(f"{key!r} must be one string, or {count} strings for a batch of {count}")
    if not all(isinstance(item, str) for item in value):
        raise ObservationError(f"{key!r} must hold strings")
    return list(value)


def _frames(
    message: Mapping, key: str, expected: ExpectedObservation, count: int, batched: bool, given: list[str]
) -> np.ndarray:
    frames = _array(message, key, given)
    shape = (expected.image_size, expected.image_size, expected.channels)
    wanted = (count, *shape) if batched else shape
    if frames.dtype != np.uint8 or tuple(frames.shape) != wanted:
        raise ObservationError(
            f"{key!r} must be uint8 frames of shape {wanted} for this checkpoint, got "
            f"{frames.dtype} {tuple(frames.shape)}"
        )
    return np.array(frames).reshape(count, *shape)  # a writable copy of the received bytes
