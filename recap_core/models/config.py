"""The networks' configurations: what config.json records as a network's "architecture", and what a
training config and the loop's settings hold. Plain dataclasses, free of torch: the settings, a preset
reader and a pipeline's definitions read them without importing the networks they describe
(recap_core.models.vision, .flow_policy and .value build those, and re-export these names).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from recap_core.rules.rewards import VALUE_SUPPORT


def architecture_dict(architecture: Any) -> dict:
    """An architecture config as config.json stores it. A state-only network's dict has no "images"
    entry, so its config.json is what it was before images existed."""
    out = asdict(architecture)
    out.pop("images")
    if architecture.images.enabled:
        out["images"] = architecture.images.to_dict()
    return out


@dataclass(frozen=True)
class VisionConfig:
    """The camera layout a network reads, and how it encodes each frame.

    ``cameras`` empty: a state-only network (every field below is then ignored). ``image_size``:
    square frames of this many pixels, ``channels`` per pixel (3 = RGB). ``encoder``: a name in
    ``recap_core.models.vision.ENCODERS``; ``feature_dim``: the length of the vector each camera
    contributes; ``encoder_width``: channels of the default conv encoder (16: the later layers do a
    quarter of the work they did at 32, which was 2-4x the training samples/s on this CPU, and the
    hidden-goal learning test passes at 16). ``shift_pad``: random-shift augmentation in training (pixels
    of padding; 0 = off). ``pretrained``: a local folder or Hugging Face repo id (read offline) whose
    weights initialise every camera's encoder when a network is built fresh; a saved checkpoint
    carries the encoder weights itself and never reads it again. ``render_quality``: per camera, the
    render quality of the frames it learns from (recap_core.sim.render_quality; empty: all fast), so
    evaluation renders what training saw.
    """

    cameras: tuple[str, ...] = ()
    image_size: int = 64
    channels: int = 3
    encoder: str = "conv"
    feature_dim: int = 64
    encoder_width: int = 16
    shift_pad: int = 4
    pretrained: str = ""
    render_quality: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(set(self.cameras)) != len(self.cameras):
            raise ValueError(f"cameras must be distinct, got {self.cameras}")
        qualities = tuple(self.render_quality) or ("fast",) * len(self.cameras)
        if len(qualities) != len(self.cameras):
            raise ValueError(f"one render quality per camera: cameras {self.cameras}, got {qualities}")
        object.__setattr__(self, "render_quality", qualities)
        if self.cameras and (self.image_size < 8 or self.channels < 1 or self.feature_dim < 1):
            raise ValueError(
                f"image_size must be >= 8 and channels, feature_dim >= 1, got {self.image_size}, "
                f"{self.channels}, {self.feature_dim}"
            )
        if self.shift_pad < 0:
            raise ValueError(f"shift_pad must be >= 0, got {self.shift_pad}")

    @property
    def enabled(self) -> bool:
        return bool(self.cameras)

    def layout(self) -> str:
        """How errors name a layout: cameras, frame shape and encoder."""
        if not self.cameras:
            return "no cameras (state only)"
        size = f"{self.image_size}x{self.image_size}x{self.channels}"
        rendering = ", ".join(sorted(set(self.render_quality)))
        return f"cameras {list(self.cameras)} at {size} px rendered {rendering} (encoder {self.encoder!r})"

    def to_dict(self) -> dict:
        return {**asdict(self), "cameras": list(self.cameras), "render_quality": list(self.render_quality)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> VisionConfig:
        """A stored layout (None or absent: a checkpoint written before images existed: state only).
        A layout stored before render qualities existed learnt from frames at MuJoCo's defaults, so
        it reads as ``presentation`` for every camera."""
        if not data:
            return cls()
        data = dict(data)
        data["cameras"] = tuple(data.get("cameras", ()))
        data["render_quality"] = tuple(data.get("render_quality", ("presentation",) * len(data["cameras"])))
        return cls(**data)


def require_same_layout(expected: VisionConfig, given: VisionConfig, where: str) -> None:
    """Refuse a camera layout, render quality or encoder other than the one a network was built for,
    naming both."""
    keys = ("cameras", "image_size", "channels", "encoder", "feature_dim", "encoder_width", "render_quality")
    if any(getattr(expected, k) != getattr(given, k) for k in keys) and (expected.enabled or given.enabled):
        raise ValueError(f"{where}: the network expects {expected.layout()}, got {given.layout()}")


@dataclass(frozen=True)
class FlowPolicyConfig:
    """Architecture and sampling defaults of the policy (stored as config.json's "architecture").

    A training config holds one with ``obs_dim`` and ``action_dim`` left 0: the network is built from
    ``sized(obs_dim, action_dim)`` once the data is known, and ``conditioned`` is the method's (only
    RECAP sees the indicator). ``horizon``: actions per chunk; ``flow_steps``: Euler steps of sampling.
    ``images``: the cameras it reads and their encoder (none by default: state only).
    """

    obs_dim: int = 0
    action_dim: int = 0
    horizon: int = 10
    backbone: str = "mlp"
    hidden: int = 256
    depth: int = 3
    heads: int = 4
    prompt_dim: int = 64
    prompt_buckets: int = 4096
    time_dim: int = 32
    indicator_dim: int = 16
    conditioned: bool = True
    flow_steps: int = 10
    images: VisionConfig = field(default_factory=VisionConfig)

    BUILD_FIELDS: ClassVar[tuple[str, ...]] = ("obs_dim", "action_dim", "conditioned")
    """Fields filled in when the network is built (from the data and the method), not chosen in a
    training config."""

    def sized(self, obs_dim: int, action_dim: int, conditioned: bool = True) -> FlowPolicyConfig:
        return dataclasses.replace(self, obs_dim=obs_dim, action_dim=action_dim, conditioned=conditioned)

    def to_dict(self) -> dict:
        return architecture_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FlowPolicyConfig:
        """A stored architecture; one written before images existed has none (state only)."""
        data = dict(data)
        data["images"] = VisionConfig.from_dict(data.get("images"))
        return cls(**data)


@dataclass(frozen=True)
class ValueNetConfig:
    """Architecture of the value network (stored as config.json's "architecture").

    A training config holds one with ``obs_dim`` left 0: the network is built from ``sized(obs_dim)``
    once the data is known. ``value_min`` / ``value_max`` span the bins: every normalised return must
    lie inside (see recap_core.rules.rewards). ``time_aware``: the network also sees t / L.
    ``images``: the cameras it reads and their encoder (none by default: state only).
    """

    obs_dim: int = 0
    n_bins: int = 201
    value_min: float = VALUE_SUPPORT[0]
    value_max: float = VALUE_SUPPORT[1]
    backbone: str = "mlp"
    hidden: int = 256
    depth: int = 3
    heads: int = 4
    prompt_dim: int = 64
    prompt_buckets: int = 4096
    time_aware: bool = True
    images: VisionConfig = field(default_factory=VisionConfig)

    BUILD_FIELDS: ClassVar[tuple[str, ...]] = ("obs_dim",)
    """Fields filled in when the network is built, not chosen in a training config."""

    def sized(self, obs_dim: int) -> ValueNetConfig:
        return dataclasses.replace(self, obs_dim=obs_dim)

    @property
    def support(self) -> tuple[float, float]:
        return (self.value_min, self.value_max)

    def to_dict(self) -> dict:
        return architecture_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValueNetConfig:
        """A stored architecture, including the older layouts: ``v_min`` / ``v_max`` for the support,
        no ``time_aware`` (written before the progress input existed, so not time-aware), and no
        ``images`` (state only)."""
        data = dict(data)
        for old, new in (("v_min", "value_min"), ("v_max", "value_max")):
            if old in data:
                data[new] = data.pop(old)
        data.setdefault("time_aware", False)
        data["images"] = VisionConfig.from_dict(data.get("images"))
        return cls(**data)
