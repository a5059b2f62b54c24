"""Benchmark: the streaming training reader against the in-memory one, at several dataset sizes.

A sample is what a policy step consumes: one observation, its H-step action chunk with mask, and the
episode's prompt. Each reader runs one epoch of shuffled batches over every step in a fresh process,
so its peak resident memory (VmHWM) is its own: the in-memory reader loads everything first (its load
time is reported apart and included in ``memory_epoch_with_load``), the streaming reader reads shards
under its budget while it goes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from recap_core.bench.store import synthetic_episodes
from recap_core.store.episode_store import EpisodeStore

_INGEST_FRAMES = 100_000  # episodes are made and ingested in slices, so building 2M frames stays small


def build_store(root: Path, frames: int, obs_dim: int, action_dim: int, seed: int) -> EpisodeStore:
    store = EpisodeStore(root)
    made = 0
    part = 0
    while made < frames:
        episodes = synthetic_episodes(min(_INGEST_FRAMES, frames - made), obs_dim, action_dim, seed + part)
        store.add_episodes(episodes)
        made += sum(len(e.actions) for e in episodes)
        part += 1
    return store


def _peak_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure_epoch(uri: str, reader: str, budget_mb: int, batch: int, horizon: int, seed: int) -> dict:
    """One epoch of batches with ``reader`` ("memory" or "streaming"); run in its own process."""
    from recap_core.steps import action_chunks
    from recap_core.store.streaming import StreamingStepReader
    from recap_core.training.sources import in_memory_data, streaming_data

    store = EpisodeStore(uri)
    versions = store.versions()
    selection = store.episodes(versions=versions).frame
    Path("/proc/self/clear_refs").write_text("5")  # count what the reader adds, not the interpreter
    baseline = _peak_mib()
    start = time.perf_counter()
    if reader == "memory":
        data = in_memory_data(store.load_steps(versions=versions), {}, 0.0, seed)
    else:
        reader_ = StreamingStepReader(store, selection, versions, budget_mb * 2**20)
        data = streaming_data(reader_, None, 0.0, seed)
    prepared = time.perf_counter()
    samples, checksum = 0, 0.0
    rng = np.random.default_rng(seed)
    current, episode_end, prompts = None, None, None
    for shard, idx in data.train[0].batches(0, rng, batch, None):
        steps = shard.steps
        if steps is not current:  # per shard, as a trainer's loss closure does
            current, episode_end, prompts = steps, steps.episode_end, steps.episodes["prompt"].to_numpy()
        observations = steps.observations[idx]
        chunks, mask = action_chunks(steps.actions, episode_end, idx, horizon)
        batch_prompts = prompts[steps.episode_index[idx]]
        checksum += (
            float(chunks[0, 0, 0]) + float(observations[0, 0]) + float(mask[0, -1]) + len(batch_prompts)
        )
        samples += len(idx)
    end = time.perf_counter()
    return {
        "samples": samples,
        "prepare_seconds": prepared - start,
        "epoch_seconds": end - prepared,
        "peak_added_mib": _peak_mib() - baseline,
        "checksum": checksum,
    }


def _in_process(uri: str, reader: str, budget_mb: int, batch: int, horizon: int, seed: int) -> dict:
    code = (
        "import json, sys; from recap_core.bench.streaming import measure_epoch; "
        "print(json.dumps(measure_epoch(sys.argv[1], sys.argv[2], *map(int, sys.argv[3:]))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, uri, reader, str(budget_mb), str(batch), str(horizon), str(seed)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_streaming_benchmark(
    sizes: tuple[int, ...] = (500_000, 2_000_000),
    budget_mb: int = 64,
    batch: int = 256,
    horizon: int = 50,
    obs_dim: int = 39,
    action_dim: int = 4,
    seed: int = 0,
    root: str | None = None,
) -> dict:
    """For each size: samples/s of both readers (epoch only, and with the in-memory load), their ratio,
    and the peak resident memory each added."""
    tmp = Path(tempfile.mkdtemp(prefix="recap-stream-bench-")) if root is None else Path(root)
    results = []
    try:
        for frames in sizes:
            uri = tmp / f"lance-{frames}"
            started = time.perf_counter()
            build_store(uri, frames, obs_dim, action_dim, seed)
            build_seconds = time.perf_counter() - started
            memory = _in_process(str(uri), "memory", budget_mb, batch, horizon, seed)
            streaming = _in_process(str(uri), "streaming", budget_mb, batch, horizon, seed)
            memory_rate = memory["samples"] / memory["epoch_seconds"]
            memory_with_load = memory["samples"] / (memory["epoch_seconds"] + memory["prepare_seconds"])
            streaming_rate = streaming["samples"] / (
                streaming["epoch_seconds"] + streaming["prepare_seconds"]
            )
            results.append(
                {
                    "frames": frames,
                    "ingest_seconds": round(build_seconds, 1),
                    "memory_samples_per_s": round(memory_rate),
                    "memory_epoch_with_load_samples_per_s": round(memory_with_load),
                    "memory_load_seconds": round(memory["prepare_seconds"], 2),
                    "streaming_samples_per_s": round(streaming_rate),
                    "streaming_vs_memory": round(streaming_rate / memory_rate, 3),
                    "streaming_vs_memory_with_load": round(streaming_rate / memory_with_load, 3),
                    "memory_peak_added_mib": round(memory["peak_added_mib"], 1),
                    "streaming_peak_added_mib": round(streaming["peak_added_mib"], 1),
                    "memory_samples_per_epoch": memory["samples"],
                    "streaming_samples_per_epoch": streaming["samples"],
                }
            )
            shutil.rmtree(uri, ignore_errors=True)
    finally:
        if root is None:
            shutil.rmtree(tmp, ignore_errors=True)
    return {
        "budget_mib": budget_mb,
        "batch_size": batch,
        "horizon": horizon,
        "obs_dim": obs_dim,
        "action_dim": action_dim,
        "unit": "samples/s; one sample = observation + H-step action chunk with mask + prompt; one epoch",
        "sizes": results,
    }
