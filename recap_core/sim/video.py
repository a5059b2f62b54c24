"""MP4 videos of evaluation episodes, rendered by replaying each episode's recorded actions.

Evaluation runs without rendering (rendering is ~100x slower than simulating on a CPU). An episode is a
pure function of its seed and its actions, so re-running those actions from the same seed in a
rendering environment reproduces it exactly; the replay checks that its observations match the recorded
ones, so a video never shows anything but the episode that was scored.

Offscreen rendering on a machine without a display uses OSMesa (Debian package libosmesa6) unless
MUJOCO_GL says otherwise (``egl`` on a GPU machine).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from recap_core.sim.environment import TaskSpec

REPLAY_TOLERANCE = 1e-4


def use_offscreen_rendering() -> None:
    """Pick a headless OpenGL backend before MuJoCo creates its first rendering context."""
    backend = os.environ.setdefault("MUJOCO_GL", "osmesa")
    os.environ.setdefault("PYOPENGL_PLATFORM", backend)


def render_replay(
    task: TaskSpec,
    seed: int,
    actions: np.ndarray,
    observations: np.ndarray,
    *,
    size: int = 128,
    camera: str | None = None,
) -> np.ndarray:
    """Frames (T + 1, size, size, 3) of the episode that started from ``seed`` and executed ``actions``."""
    use_offscreen_rendering()
    env = task.make_env()
    if not hasattr(env, "enable_rendering"):
        raise TypeError(f"task {task.name!r}: its environment cannot render frames")
    env.enable_rendering(size, size, camera)
    first = env.reset(seed)
    _require_same(task, seed, 0, first, observations[0])
    frames = [env.render()]
    for t, action in enumerate(actions):
        observation, _ = env.step(action)
        if t + 1 < len(observations):
            _require_same(task, seed, t + 1, observation, observations[t + 1])
        frames.append(env.render())
    return np.stack(frames)


def _require_same(task: TaskSpec, seed: int, t: int, replayed: np.ndarray, recorded: np.ndarray) -> None:
    gap = float(np.max(np.abs(np.asarray(replayed, dtype=np.float64) - recorded)))
    if gap > REPLAY_TOLERANCE:
        raise ValueError(
            f"task {task.name!r}, seed {seed}: the replay diverged from the evaluated episode at step {t} "
            f"(observation differs by {gap:.3g}); the environment is not deterministic, no video written"
        )


def write_mp4(frames: np.ndarray, path: Path, fps: float) -> Path:
    """H.264 MP4 (yuv420p, which every player reads); written to a temporary name, then renamed."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    height, width = frames.shape[1:3]
    with av.open(str(partial), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=max(1, round(fps)))
        stream.width, stream.height = width - width % 2, height - height % 2  # yuv420p needs even sizes
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            video_frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(frame[: stream.height, : stream.width]), format="rgb24"
            )
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode())
    partial.replace(path)
    return path
