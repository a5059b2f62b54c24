"""Benchmark of the store with camera frames: what images cost at ingest, at load and per training batch.

Frames are most of a step's bytes and PNG decoding most of the work of reading them, so this measures,
on synthetic camera-like frames (smooth gradients and a few moving blobs: compressible like renders,
unlike noise, which PNG cannot compress):

1. ingest: ``add_episodes`` with image columns, frames/s and the bytes a frame takes (PNG and on disk);
2. ``load_steps`` with cameras (reads and decodes every frame once), against PNG decoding alone;
3. random chunked training reads with images three ways, as ``recap bench store`` does for states:
   (a) Lance ``take`` of each batch's rows and image blobs, decoded per batch, (b) gathers from the
   in-memory ``StepArrays`` (frames decoded once, uint8), (c) the same gathers on plain numpy arrays;
4. one epoch of the streaming reader (shards decoded under a memory budget) against the in-memory path;
   on a GPU (``device`` "auto" finds one) every batch is also copied to it, as a trainer there would.

A sample is one observation, each camera's frame and an H-step action chunk; frames/s counts samples.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import lance
import numpy as np
import pyarrow
import pyarrow.compute as pc
import torch

from recap_core.bench.store import _rate, numpy_ceiling, synthetic_episodes
from recap_core.episode import Episode
from recap_core.sim.cameras import decode_frames, encode_frames
from recap_core.steps import StepArrays, action_chunks
from recap_core.store.episode_store import STEPS, EpisodeStore
from recap_core.store.frame_cache import FrameCache
from schemas.steps import IMAGE_COLUMN_PREFIX

_BLOBS = 3  # moving blobs per frame


def camera_frames(count: int, size: int, first: int, camera: int = 0) -> np.ndarray:
    """(count, size, size, 3) uint8 frames of step ``first`` on: drifting colour gradients with a few
    solid blobs moving across them; ``camera`` shifts the picture, so cameras differ."""
    y, x = np.mgrid[0:size, 0:size] / size
    step = np.arange(first, first + count, dtype=np.float64)[:, None, None]
    phase = 0.05 * step + 0.37 * camera
    red = 128 + 90 * np.sin(2 * np.pi * (x + phase / 5))
    green = 128 + 90 * np.cos(2 * np.pi * (y + phase / 7))
    blue = 128 + 50 * np.sin(2 * np.pi * (x * y + phase / 3))
    frames = np.stack([red, green, blue], axis=-1)
    for blob in range(_BLOBS):
        cx = 0.5 + 0.35 * np.sin(0.03 * step * (blob + 1) + blob + camera)
        cy = 0.5 + 0.35 * np.cos(0.02 * step * (blob + 2) + 2 * blob)
        inside = (x - cx) ** 2 + (y - cy) ** 2 < (0.06 + 0.03 * blob) ** 2
        colour = np.array([40 + 90 * blob, 220 - 80 * blob, 60 + 60 * blob], dtype=np.float64)
        frames = np.where(inside[..., None], colour, frames)
    return frames.astype(np.uint8)


def image_episodes(
    frames: int, size: int, cameras: Sequence[str], obs_dim: int, action_dim: int, seed: int
) -> tuple[list[Episode], float]:
    """``recap bench store``'s state episodes carrying PNG frames of ``cameras``, and the seconds spent
    PNG-encoding them (as collectors do, ``encode_frames``)."""
    episodes, first, encode_seconds = [], 0, 0.0
    for episode in synthetic_episodes(frames, obs_dim, action_dim, seed):
        pixels = {c: camera_frames(episode.length, size, first, i) for i, c in enumerate(cameras)}
        start = time.perf_counter()
        encoded = encode_frames(pixels)
        encode_seconds += time.perf_counter() - start
        episodes.append(dataclasses.replace(episode, images=encoded))
        first += episode.length
    return episodes, encode_seconds


def step_positions(dataset: lance.LanceDataset, steps: StepArrays) -> np.ndarray:
    """Table position of each loaded step (``steps`` are in episode and t order, the table need not
    be): what a per-batch ``take`` of the steps' rows needs."""
    ids = pyarrow.array(steps.episodes["episode_id"].to_list(), type=pyarrow.string())
    rows = dataset.to_table(columns=["episode_id", "t"])
    episode = pc.index_in(rows.column("episode_id"), value_set=ids).to_numpy(zero_copy_only=False)
    lengths = steps.episodes["length"].to_numpy().astype(np.int64)
    first_step = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    flat = first_step[episode] + rows.column("t").to_numpy().astype(np.int64)
    positions = np.empty(len(steps), dtype=np.int64)
    positions[flat] = np.arange(len(flat))
    return positions


def chunk_rows(index: np.ndarray, episode_end: np.ndarray, horizon: int) -> np.ndarray:
    """(B, H) step indices of each sample's action chunk, clamped at its episode's last step."""
    offsets = index[:, None] + np.arange(horizon)[None, :]
    np.minimum(offsets, episode_end[index][:, None] - 1, out=offsets)
    return offsets


def lance_take_batch(
    dataset: lance.LanceDataset,
    positions: np.ndarray,
    steps: StepArrays,
    index: np.ndarray,
    cameras: Sequence[str],
    horizon: int,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """One batch read from disk: observations and action chunks by ``take``, each camera's frame of the
    sampled steps by ``take_blobs``, PNG-decoded. Returns (obs (B, D), chunks (B, H, A), camera -> frames)."""
    rows = positions[np.concatenate([index, chunk_rows(index, steps.episode_end, horizon).ravel()])]
    unique, inverse = np.unique(rows, return_inverse=True)
    table = dataset.take(unique.tolist(), columns=["observation", "action"])
    obs_dim, action_dim = steps.observations.shape[1], steps.actions.shape[1]
    obs = table.column("observation").combine_chunks().flatten().to_numpy().reshape(-1, obs_dim)
    actions = table.column("action").combine_chunks().flatten().to_numpy().reshape(-1, action_dim)
    batch = len(index)
    chunks = actions[inverse[batch:]].reshape(batch, horizon, action_dim)
    frame_rows = positions[index].tolist()
    images = {
        camera: decode_frames(
            [blob.read() for blob in dataset.take_blobs(f"{IMAGE_COLUMN_PREFIX}{camera}", indices=frame_rows)]
        )
        for camera in cameras
    }
    return obs[inverse[:batch]], chunks, images


def memory_batch(
    steps: StepArrays, index: np.ndarray, cameras: Sequence[str], horizon: int
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The training path's batch: gathers from the in-memory steps and their decoded frames."""
    chunks, _mask = action_chunks(steps.actions, steps.episode_end, index, horizon)
    return steps.observations[index], chunks, {c: steps.images[c][index] for c in cameras}


def _dir_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def run_image_benchmark(
    frames: int = 20_000,
    image_size: int = 64,
    cameras: Sequence[str] = ("front",),
    batch_size: int = 256,
    horizon: int = 50,
    obs_dim: int = 39,
    action_dim: int = 4,
    ingest_batch_episodes: int = 20,
    take_batches: int = 10,
    memory_batches: int = 500,
    budget_mb: int = 64,
    streaming: bool = True,
    seed: int = 0,
    root: str | None = None,
    device: str = "auto",
) -> dict:
    """Run the benchmark in a fresh store (a temporary directory unless ``root``) and return the JSON."""
    from recap_core.training.device import resolve_placement

    placement = resolve_placement(device, "fp32")
    tmp = Path(tempfile.mkdtemp(prefix="recap-image-bench-")) if root is None else Path(root)
    try:
        store_root = tmp / "lance"
        episodes, encode_seconds = image_episodes(frames, image_size, cameras, obs_dim, action_dim, seed)
        result = {
            "device": placement.describe()["device"],
            "frames": sum(e.length for e in episodes),
            "episodes": len(episodes),
            "cameras": list(cameras),
            "image_size": image_size,
            "batch_size": batch_size,
            "horizon": horizon,
            "png_encode_frames_per_s": _rate(sum(e.length for e in episodes) * len(cameras), encode_seconds),
        }
        result |= measure_ingest(EpisodeStore(str(store_root)), episodes, cameras, ingest_batch_episodes)
        # the whole store on disk (states, episode rows, manifests too) per camera frame
        result["stored_bytes_per_frame"] = round(_dir_bytes(store_root) / (result["frames"] * len(cameras)))
        result |= measure_decode(episodes, cameras)
        del episodes
        store = EpisodeStore(str(store_root))
        result |= measure_reads(
            store, cameras, image_size, batch_size, horizon, take_batches, memory_batches, seed
        )
        if streaming:
            result["streaming"] = measure_streaming(
                store, cameras, image_size, budget_mb, batch_size, horizon, seed, placement.device
            )
        result["unit"] = (
            "frames/s = samples/s; one sample = 1 observation + one frame per camera + a horizon-step action "
            "chunk; ingest/decode frames/s count camera frames"
        )
        return result
    finally:
        if root is None:
            shutil.rmtree(tmp, ignore_errors=True)


def measure_ingest(
    store: EpisodeStore, episodes: list[Episode], cameras: Sequence[str], batch_episodes: int
) -> dict:
    """``add_episodes`` in batches of ``batch_episodes``: camera frames/s and PNG bytes per frame."""
    start = time.perf_counter()
    for i in range(0, len(episodes), batch_episodes):
        store.add_episodes(episodes[i : i + batch_episodes])
    seconds = time.perf_counter() - start
    count = sum(e.length for e in episodes) * len(cameras)
    png_bytes = sum(len(b) for e in episodes for c in cameras for b in e.images[c])
    return {
        "ingest_frames_per_s": _rate(count, seconds),
        "ingest_seconds": round(seconds, 3),
        "png_bytes_per_frame": round(png_bytes / count),
        "raw_bytes_per_frame": int(np.prod(decode_frames([episodes[0].images[cameras[0]][0]]).shape)),
    }


def measure_decode(episodes: list[Episode], cameras: Sequence[str]) -> dict:
    """PNG decoding alone (bytes already in memory): the reference for reading frames."""
    encoded = [b for e in episodes for c in cameras for b in e.images[c]]
    start = time.perf_counter()
    decode_frames(encoded)
    return {"png_decode_frames_per_s": _rate(len(encoded), time.perf_counter() - start)}


def measure_reads(
    store: EpisodeStore,
    cameras: Sequence[str],
    image_size: int,
    batch_size: int,
    horizon: int,
    take_batches: int,
    memory_batches: int,
    seed: int,
) -> dict:
    """``load_steps`` with cameras, then random chunked batches read the three ways."""
    versions = store.versions()
    start = time.perf_counter()
    steps = store.load_steps(versions=versions, cameras=cameras, image_size=image_size)
    load_seconds = time.perf_counter() - start
    n = len(steps)
    dataset = store.dataset(STEPS)
    positions = step_positions(dataset, steps)
    rng = np.random.default_rng(seed + 1)

    start = time.perf_counter()
    for _ in range(take_batches):
        lance_take_batch(dataset, positions, steps, rng.integers(0, n, size=batch_size), cameras, horizon)
    take_rate = _rate(take_batches * batch_size, time.perf_counter() - start)

    start = time.perf_counter()
    for _ in range(memory_batches):
        memory_batch(steps, rng.integers(0, n, size=batch_size), cameras, horizon)
    memory_rate = _rate(memory_batches * batch_size, time.perf_counter() - start)

    numpy_rate = numpy_ceiling(steps, cameras, batch_size, horizon, memory_batches, rng)
    return {
        "load_steps_seconds": round(load_seconds, 3),
        "load_steps_frames_per_s": _rate(n * len(cameras), load_seconds),
        "lance_take_frames_per_s": take_rate,
        "steparrays_frames_per_s": memory_rate,
        "numpy_ceiling_frames_per_s": numpy_rate,
        "lance_take_vs_ceiling": round(take_rate / numpy_rate, 4),
        "steparrays_vs_ceiling": round(memory_rate / numpy_rate, 3),
    }


def measure_streaming(
    store: EpisodeStore,
    cameras: Sequence[str],
    image_size: int,
    budget_mb: int,
    batch_size: int,
    horizon: int,
    seed: int,
    device: torch.device | None = None,
) -> dict:
    """One epoch of shuffled batches from the streaming reader (shards read and decoded as it goes)
    and from the in-memory path (its load, with every frame decoded, reported apart); each batch is
    copied to ``device`` when it is a GPU."""
    from recap_core.store.streaming import StreamingStepReader
    from recap_core.training.sources import in_memory_data, streaming_data

    versions = store.versions()
    start = time.perf_counter()
    memory = in_memory_data(
        store.load_steps(versions=versions, cameras=cameras, image_size=image_size), {}, 0.0, seed
    )
    load_seconds = time.perf_counter() - start
    memory_samples, memory_seconds, _ = _epoch(memory, cameras, batch_size, horizon, seed, device)
    del memory
    selection = store.episodes(versions=versions).frame
    reader = StreamingStepReader(store, selection, versions, budget_mb * 2**20, cameras, image_size)
    streamed, streaming_seconds, shards = _epoch(
        streaming_data(reader, None, 0.0, seed), cameras, batch_size, horizon, seed, device
    )
    memory_rate = memory_samples / memory_seconds
    with_load = memory_samples / (memory_seconds + load_seconds)
    streaming_rate = streamed / streaming_seconds
    # the same stream with the frame cache: the first epoch decodes and writes it, later ones read it
    cached_rates = []
    with tempfile.TemporaryDirectory(prefix="recap-frame-cache-") as folder:
        cache = FrameCache(folder)
        cached = StreamingStepReader(
            store, selection, versions, budget_mb * 2**20, cameras, image_size, cache
        )
        for epoch in range(2):
            samples, seconds, _ = _epoch(
                streaming_data(cached, None, 0.0, seed + epoch),
                cameras,
                batch_size,
                horizon,
                seed + epoch,
                device,
            )
            cached_rates.append(samples / seconds)
        hits, misses = cache.hits, cache.misses
    return {
        "budget_mib": budget_mb,
        "shards": shards,
        "steps_per_shard": reader.steps_per_shard,
        "memory_samples_per_s": round(memory_rate),
        "memory_load_seconds": round(load_seconds, 2),
        "memory_epoch_with_load_samples_per_s": round(with_load),
        "streaming_samples_per_s": round(streaming_rate),
        "streaming_vs_memory": round(streaming_rate / memory_rate, 3),
        "streaming_vs_memory_with_load": round(streaming_rate / with_load, 3),
        "streaming_frame_cache_first_epoch_samples_per_s": round(cached_rates[0]),
        "streaming_frame_cache_second_epoch_samples_per_s": round(cached_rates[1]),
        "streaming_frame_cache_second_epoch_vs_memory": round(cached_rates[1] / memory_rate, 3),
        "frame_cache_hits": hits,
        "frame_cache_misses": misses,
    }


def _epoch(
    data,
    cameras: Sequence[str],
    batch_size: int,
    horizon: int,
    seed: int,
    device: torch.device | None = None,
) -> tuple[int, float, int]:
    """(samples, seconds, shards) of one epoch of ``data``'s training batches, each gathered as a
    trainer does: observations, action chunks and every camera's frames (then copied to a GPU)."""
    to_gpu = device is not None and device.type == "cuda"
    samples, shards, current = 0, 0, None
    start = time.perf_counter()
    for shard, idx in data.train[0].batches(0, np.random.default_rng(seed), batch_size, None):
        if shard.steps is not current:
            current, shards = shard.steps, shards + 1
        obs, chunks, frames = memory_batch(current, idx, cameras, horizon)
        if to_gpu:
            for array in (obs, chunks, *frames.values()):
                torch.from_numpy(np.ascontiguousarray(array)).to(device, non_blocking=True)
        samples += len(idx)
    if to_gpu:
        torch.cuda.synchronize(device)
    return samples, time.perf_counter() - start, shards
