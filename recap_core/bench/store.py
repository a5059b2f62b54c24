"""Benchmark of the store: ingest speed and random chunked reads for training, three ways.

(a) Lance ``take()`` per batch (rows read from disk for every batch), (b) the training path:
``EpisodeStore.load_steps`` once, then ``recap_core.steps.action_chunks`` on the in-memory StepArrays,
(c) the ceiling: the same gathers on plain, freshly allocated numpy arrays. A "sample" is one
observation with its H-step action chunk; frames/s counts samples per second.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from recap_core.episode import Episode, stable_episode_id
from recap_core.steps import StepArrays, action_chunks
from recap_core.store.episode_store import STEPS, EpisodeStore


def synthetic_episodes(frames: int, obs_dim: int, action_dim: int, seed: int) -> list[Episode]:
    """State-only episodes of 100-300 steps (Meta-World-like sizes) adding up to ``frames`` steps."""
    rng = np.random.default_rng(seed)
    episodes, total, index = [], 0, 0
    while total < frames:
        length = int(min(rng.integers(100, 301), frames - total))
        episodes.append(
            Episode(
                episode_id=stable_episode_id("bench", seed, index),
                task=f"bench-task-{index % 4}",
                prompt=f"benchmark task {index % 4}",
                kind=("demo", "autonomous", "intervention")[index % 3],
                success=bool(rng.random() < 0.5),
                observations=rng.normal(size=(length, obs_dim)).astype(np.float32),
                actions=rng.uniform(-1, 1, size=(length, action_dim)).astype(np.float32),
                is_correction=rng.random(length) < 0.1,
            )
        )
        total += length
        index += 1
    return episodes


def _rate(samples: int, seconds: float) -> float:
    return round(samples / seconds, 1) if seconds > 0 else float("inf")


def run_store_benchmark(
    frames: int = 200_000,
    obs_dim: int = 39,
    action_dim: int = 4,
    batch_size: int = 256,
    horizon: int = 50,
    ingest_batch_episodes: int = 100,
    take_batches: int = 20,
    memory_batches: int = 2_000,
    seed: int = 0,
    root: str | None = None,
) -> dict:
    """Run the benchmark in a fresh store (a temporary directory unless ``root``) and return the JSON."""
    tmp = None
    if root is None:
        tmp = tempfile.mkdtemp(prefix="recap-store-bench-")
        root = str(Path(tmp) / "lance")
    try:
        return _measure(
            EpisodeStore(root), frames, obs_dim, action_dim, batch_size, horizon,
            ingest_batch_episodes, take_batches, memory_batches, seed,
        )  # fmt: skip
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _measure(
    store: EpisodeStore,
    frames: int,
    obs_dim: int,
    action_dim: int,
    batch_size: int,
    horizon: int,
    ingest_batch_episodes: int,
    take_batches: int,
    memory_batches: int,
    seed: int,
) -> dict:
    episodes = synthetic_episodes(frames, obs_dim, action_dim, seed)
    start = time.perf_counter()
    for i in range(0, len(episodes), ingest_batch_episodes):
        store.add_episodes(episodes[i : i + ingest_batch_episodes])
    ingest_seconds = time.perf_counter() - start
    del episodes

    # Training path, part 1: load the needed columns once.
    start = time.perf_counter()
    steps = store.load_steps(versions=store.versions())
    load_seconds = time.perf_counter() - start
    n = len(steps)
    episode_end = steps.episode_end
    rng = np.random.default_rng(seed + 1)

    # (a) Lance take() of each batch's observation rows and action-chunk rows.
    dataset = store.dataset(STEPS)
    start = time.perf_counter()
    for _ in range(take_batches):
        index = rng.integers(0, n, size=batch_size)
        offsets = index[:, None] + np.arange(horizon)[None, :]
        end = episode_end[index][:, None]
        np.minimum(offsets, end - 1, out=offsets)
        rows, inverse = np.unique(np.concatenate([index, offsets.ravel()]), return_inverse=True)
        table = dataset.take(rows.tolist(), columns=["observation", "action"])
        values = table.column("action").combine_chunks().flatten().to_numpy().reshape(len(rows), action_dim)
        obs_values = table.column("observation").combine_chunks().flatten().to_numpy()
        obs_values = obs_values.reshape(len(rows), obs_dim)
        _obs = obs_values[inverse[:batch_size]]
        _chunks = values[inverse[batch_size:]].reshape(batch_size, horizon, action_dim)
    take_seconds = time.perf_counter() - start

    # (b) StepArrays + action_chunks, the path training uses.
    start = time.perf_counter()
    for _ in range(memory_batches):
        index = rng.integers(0, n, size=batch_size)
        _obs = steps.observations[index]
        _chunks, _mask = action_chunks(steps.actions, episode_end, index, horizon)
    memory_seconds = time.perf_counter() - start

    # (c) Ceiling: the same gathers on plain numpy arrays the process allocated itself.
    numpy_rate = numpy_ceiling(steps, (), batch_size, horizon, memory_batches, rng)

    take_rate = _rate(take_batches * batch_size, take_seconds)
    memory_rate = _rate(memory_batches * batch_size, memory_seconds)
    return {
        "frames": n,
        "episodes": int(steps.episodes.height),
        "obs_dim": obs_dim,
        "action_dim": action_dim,
        "batch_size": batch_size,
        "horizon": horizon,
        "ingest_frames_per_s": _rate(n, ingest_seconds),
        "ingest_seconds": round(ingest_seconds, 3),
        "load_steps_seconds": round(load_seconds, 3),
        "load_steps_frames_per_s": _rate(n, load_seconds),
        "lance_take_frames_per_s": take_rate,
        "steparrays_frames_per_s": memory_rate,
        "numpy_ceiling_frames_per_s": numpy_rate,
        "steparrays_vs_ceiling": round(memory_rate / numpy_rate, 3),
        "lance_take_vs_ceiling": round(take_rate / numpy_rate, 4),
        "unit": "frames/s = samples/s; one sample = 1 observation + a horizon-step action chunk (with mask)",
        "store_versions": store.versions(),
    }


def _smooth_frames(count: int, size: int, first: int) -> np.ndarray:
    """(count, size, size, 3) camera-like frames: drifting gradients, a different picture every step."""
    y, x = np.mgrid[0:size, 0:size] / size
    phase = 0.2 * np.arange(first, first + count)[:, None, None]
    red = 128 + 100 * np.sin(2 * np.pi * (x + phase / 5))
    green = 128 + 100 * np.cos(2 * np.pi * (y + phase / 7))
    blue = 128 + 60 * np.sin(2 * np.pi * (x * y + phase / 3))
    return np.stack([red, green, blue], axis=-1).astype(np.uint8)


def run_lerobot_video_benchmark(
    frames: int = 2_000, size: int = 64, episode_length: int = 200, fps: float = 30.0
) -> dict:
    """LeRobot video features both ways on one camera: ``export_lerobot(video=True)`` (PNG decode + mp4
    encode), the importer (seek, decode, PNG encode, frame-aligned with the rows) and, as the ceiling,
    PyAV decoding the same mp4 straight through to pixels."""
    import av
    from av.video.reformatter import VideoReformatter

    from recap_core.sim.cameras import png_bytes
    from recap_core.store.lerobot import LeRobotOptions, iter_episodes, open_dataset
    from recap_core.store.lerobot_export import export_lerobot
    from recap_core.store.lerobot_video import video_codec

    tmp = Path(tempfile.mkdtemp(prefix="recap-video-bench-"))
    try:
        store = EpisodeStore(str(tmp / "lance"))
        episodes = []
        for index, first in enumerate(range(0, frames, episode_length)):
            length = min(episode_length, frames - first)
            pixels = _smooth_frames(length, size, first)
            episodes.append(
                Episode(
                    episode_id=stable_episode_id("video-bench", index),
                    task="video-bench",
                    prompt="benchmark",
                    kind="demo",
                    success=True,
                    observations=np.zeros((length, 4), np.float32),
                    actions=np.zeros((length, 2), np.float32),
                    images={"front": [png_bytes(frame) for frame in pixels]},
                )
            )
        store.add_episodes(episodes)
        out = tmp / "dataset"
        start = time.perf_counter()
        export_lerobot(store, out, task="video-bench", kind="demo", fps=fps, video=True)
        export_seconds = time.perf_counter() - start
        start = time.perf_counter()
        options = LeRobotOptions(kind="demo", assume_success=True)
        imported = sum(e.length for e in iter_episodes(open_dataset(str(out)), options))
        import_seconds = time.perf_counter() - start
        videos = list(out.glob("videos/**/*.mp4"))
        start = time.perf_counter()
        to_rgb = VideoReformatter()  # one swscale context for the file, as the importer does
        with av.open(str(videos[0])) as container:
            decoded = sum(1 for frame in container.decode(video=0) if to_rgb.reformat(frame, format="rgb24"))
        decode_seconds = time.perf_counter() - start
        return {
            "frames": imported,
            "decoded_frames": decoded,
            "episodes": len(episodes),
            "frame_size": [size, size, 3],
            "codec": video_codec(),
            "mp4_bytes": sum(p.stat().st_size for p in videos),
            "png_bytes": sum(len(b) for e in episodes for b in e.images["front"]),
            "export_frames_per_s": _rate(imported, export_seconds),
            "import_frames_per_s": _rate(imported, import_seconds),
            "pyav_decode_frames_per_s": _rate(decoded, decode_seconds),
            "unit": "frames/s of one camera; import = seek + decode + PNG encode, aligned with the rows",
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def numpy_ceiling(
    steps: StepArrays,
    cameras: Sequence[str],
    batch_size: int,
    horizon: int,
    batches: int,
    rng: np.random.Generator,
) -> float:
    """Samples/s of the training gathers (observation, action chunk with its mask, each camera's frame) on
    plain numpy arrays this process allocated itself: what no reader can beat."""
    observations = np.array(steps.observations, copy=True)
    actions = np.array(steps.actions, copy=True)
    ends = np.array(steps.episode_end, copy=True)
    images = [np.array(steps.images[c], copy=True) for c in cameras]
    window = np.arange(horizon)[None, :]
    start = time.perf_counter()
    for _ in range(batches):
        index = rng.integers(0, len(actions), size=batch_size)
        _obs = observations[index]
        offsets = index[:, None] + window
        end = ends[index][:, None]
        _mask = offsets < end
        np.minimum(offsets, end - 1, out=offsets)
        _chunks = actions[offsets]
        _frames = [frames[index] for frames in images]
    return _rate(batches * batch_size, time.perf_counter() - start)
