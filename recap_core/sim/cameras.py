"""Camera observations from the simulator: a task whose environment also renders its cameras, so
collectors store each step's frames in the episode's image columns next to the state vector.

Rendering is offscreen (OSMesa on a CPU-only machine: recap_core.sim.video.use_offscreen_rendering) and
by far the slowest part of a step, so cameras are opt-in per run (``LoopSettings.cameras``) and small
(``image_size``, 64 by default). Frames are stored as lossless PNG: the store keeps encoded frames,
like LeRobot image features, and decoding gives back the rendered pixels exactly.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from recap_core.sim.environment import SimEnv, TaskSpec
from recap_core.sim.render_quality import FAST, RenderQuality, render_quality
from recap_core.sim.video import use_offscreen_rendering

_CAMERA_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")  # becomes the store column image_<camera>


@dataclass(frozen=True)
class CameraSpec:
    """Which cameras to render, at what square resolution, and at which render quality each
    (``qualities``: one name of recap_core.sim.render_quality.QUALITIES per camera; empty: all fast)."""

    names: tuple[str, ...]
    size: int = 64
    qualities: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.names or len(set(self.names)) != len(self.names):
            raise ValueError(f"cameras must be distinct and at least one, got {self.names}")
        if not self.qualities:
            object.__setattr__(self, "qualities", (FAST.name,) * len(self.names))
        if len(self.qualities) != len(self.names):
            raise ValueError(
                f"one render quality per camera: cameras {self.names}, qualities {self.qualities}"
            )
        for quality in self.qualities:
            render_quality(quality)
        bad = [n for n in self.names if not _CAMERA_NAME.match(n)]
        if bad:
            raise ValueError(f"camera names {bad} must be letters, digits and '_' (they name store columns)")
        if not 16 <= self.size <= 512:
            raise ValueError(f"image size must be in [16, 512] pixels, got {self.size}")

    def quality_of(self, camera: str) -> RenderQuality:
        return render_quality(self.qualities[self.names.index(camera)])


class CameraEnv:
    """A ``SimEnv`` that renders every camera after each reset and step; ``frames()`` are the latest."""

    def __init__(self, env: SimEnv, spec: CameraSpec) -> None:
        if not hasattr(env, "enable_rendering"):
            raise TypeError(f"{type(env).__name__} cannot render: it has no cameras")
        use_offscreen_rendering()
        first = spec.names[0]
        env.enable_rendering(spec.size, spec.size, first, spec.quality_of(first))  # type: ignore[attr-defined]
        self.env, self.spec = env, spec
        self.obs_dim, self.action_dim = env.obs_dim, env.action_dim
        self.control_period = env.control_period
        self.action_low, self.action_high = env.action_low, env.action_high
        self._frames: dict[str, np.ndarray] = {}

    def _capture(self) -> None:
        for name in self.spec.names:
            self.env.select_camera(name)  # type: ignore[attr-defined]
            self.env.set_render_quality(self.spec.quality_of(name))  # type: ignore[attr-defined]
            self._frames[name] = self.env.render()  # type: ignore[attr-defined]

    def reset(self, seed: int) -> np.ndarray:
        obs = self.env.reset(seed)
        self._capture()
        return obs

    def step(self, action: np.ndarray) -> tuple[np.ndarray, bool]:
        obs, success = self.env.step(action)
        self._capture()
        return obs, success

    def expert_action(self) -> np.ndarray:
        return self.env.expert_action()

    def frames(self) -> dict[str, np.ndarray]:
        return self._frames


def _camera_env(make_env: Callable[[], SimEnv], spec: CameraSpec) -> CameraEnv:
    return CameraEnv(make_env(), spec)


def with_cameras(task: TaskSpec, spec: CameraSpec | None) -> TaskSpec:
    """The same task (same name, seeds and episodes) whose environment also renders ``spec``'s cameras."""
    if spec is None:
        return task
    return dataclasses.replace(task, make_env=functools.partial(_camera_env, task.make_env, spec))


def cameras_of(task: TaskSpec) -> CameraSpec | None:
    """The cameras ``with_cameras`` made ``task`` render (None: it renders none)."""
    make_env = task.make_env
    if isinstance(make_env, functools.partial) and make_env.func is _camera_env:
        return make_env.args[1]
    return None


def with_policy_cameras(
    task: TaskSpec, cameras: Sequence[str], size: int, qualities: Sequence[str] = ()
) -> TaskSpec:
    """``task`` rendering what a policy reads: ``cameras`` at ``size`` pixels and the render quality
    it was trained on (``qualities``, one per camera; empty: fast), besides what it already records.
    One environment renders one frame size, and one camera one quality, so a recording that differs
    from the policy's is refused, naming both (record as the policy reads, or train it on the
    recording)."""
    if not cameras:
        return task
    wanted = CameraSpec(tuple(cameras), size, tuple(qualities))
    current = cameras_of(task)
    if current is None:
        return with_cameras(task, wanted)
    if current.size != size:
        raise ValueError(
            f"task {task.name}: the policy reads cameras {list(cameras)} at {size}x{size} px, but the "
            f"task records cameras {list(current.names)} at {current.size}x{current.size} px"
        )
    clashes = [
        c for c in wanted.names if c in current.names and current.quality_of(c) != wanted.quality_of(c)
    ]
    if clashes:
        described = ", ".join(
            f"{c}: {wanted.quality_of(c).name} (policy) against {current.quality_of(c).name} (recording)"
            for c in clashes
        )
        raise ValueError(f"task {task.name}: the policy was trained on another render quality ({described})")
    extra = tuple(c for c in wanted.names if c not in current.names)
    if not extra:
        return task
    inner = dataclasses.replace(task, make_env=task.make_env.args[0])  # type: ignore[attr-defined]
    qualities_all = current.qualities + tuple(wanted.quality_of(c).name for c in extra)
    return with_cameras(inner, CameraSpec(current.names + extra, size, qualities_all))


class FrameRecorder:
    """Per-camera frame buffers of one episode, filled step by step alongside its observations."""

    def __init__(self, env: SimEnv, max_steps: int) -> None:
        spec: CameraSpec = env.spec  # type: ignore[attr-defined]
        self.buffers = {n: np.empty((max_steps, spec.size, spec.size, 3), dtype=np.uint8) for n in spec.names}
        self.env = env

    @staticmethod
    def for_env(env: SimEnv, max_steps: int) -> FrameRecorder | None:
        return FrameRecorder(env, max_steps) if isinstance(env, CameraEnv) else None

    def record(self, t: int) -> None:
        for name, frame in self.env.frames().items():  # type: ignore[attr-defined]
            self.buffers[name][t] = frame

    def frames(self, length: int) -> dict[str, np.ndarray]:
        return {name: buffer[:length].copy() for name, buffer in self.buffers.items()}


def png_bytes(frame: np.ndarray) -> bytes:
    """Lossless PNG of one (H, W, 3) uint8 frame, as the store's image columns keep frames;
    compress_level 1: encoding speed over a few percent of size."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def encode_frames(frames: dict[str, np.ndarray] | None) -> dict[str, list[bytes]] | None:
    """PNG bytes per frame and camera, as the store's image columns keep them."""
    if not frames:
        return None
    return {name: [png_bytes(frame) for frame in stack] for name, stack in frames.items()}


def decode_frames(encoded: Sequence[bytes]) -> np.ndarray:
    """(T, H, W, 3) uint8 from stored frames (PNG or JPEG)."""
    from PIL import Image

    def rgb(data: bytes) -> np.ndarray:
        image = Image.open(io.BytesIO(data))
        # our frames are RGB already; converting them anyway copies every pixel once more (~15% of decoding)
        return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))

    return np.stack([rgb(b) for b in encoded])
