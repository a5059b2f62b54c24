"""`recap bench images`: the JSON it prints, and that every read path returns the stored frames' pixels."""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from pipelines.cli.main import app
from recap_core.bench.images import (
    camera_frames,
    image_episodes,
    lance_take_batch,
    memory_batch,
    step_positions,
)
from recap_core.store.episode_store import STEPS, EpisodeStore


def test_bench_images_prints_json():
    args = ["bench", "images", "--frames", "600", "--cameras", "front,wrist", "--image-size", "32"]
    result = CliRunner().invoke(app, [*args, "--batch-size", "32", "--horizon", "5", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["frames"] == 600 and report["cameras"] == ["front", "wrist"] and report["image_size"] == 32
    for key in (
        "png_encode_frames_per_s",
        "ingest_frames_per_s",
        "png_decode_frames_per_s",
        "load_steps_frames_per_s",
        "lance_take_frames_per_s",
        "steparrays_frames_per_s",
        "numpy_ceiling_frames_per_s",
        "png_bytes_per_frame",
        "stored_bytes_per_frame",
    ):
        assert report[key] > 0, key
    assert report["raw_bytes_per_frame"] == 32 * 32 * 3
    assert report["steparrays_vs_ceiling"] == round(
        report["steparrays_frames_per_s"] / report["numpy_ceiling_frames_per_s"], 3
    )
    streaming = report["streaming"]
    assert streaming["streaming_samples_per_s"] > 0 and streaming["memory_samples_per_s"] > 0
    assert streaming["shards"] >= 1


def test_frames_are_compressible_and_move():
    frames = camera_frames(20, 64, first=0)
    assert frames.shape == (20, 64, 64, 3) and frames.dtype == np.uint8
    assert not np.array_equal(frames[0], frames[-1])
    assert not np.array_equal(frames, camera_frames(20, 64, first=0, camera=1))
    buffer = io.BytesIO()
    Image.fromarray(frames[0]).save(buffer, format="PNG", compress_level=1)
    assert len(buffer.getvalue()) < frames[0].nbytes / 3  # smooth like a render, unlike noise


def test_reads_return_the_stored_pixels(tmp_path):
    cameras = ("front", "wrist")
    episodes, _ = image_episodes(700, 24, cameras, obs_dim=5, action_dim=3, seed=3)
    store = EpisodeStore(tmp_path / "lance")
    store.add_episodes(episodes[:2])
    store.add_episodes(episodes[2:])
    steps = store.load_steps(cameras=cameras, image_size=24)
    by_id = {e.episode_id: e for e in episodes}
    ids = steps.episodes["episode_id"].to_list()
    first = 0
    for episode in episodes:  # PNG is lossless: decoded frames are the generated pixels
        for i, camera in enumerate(cameras):
            expected = camera_frames(episode.length, 24, first, i)
            rows = np.flatnonzero(steps.episode_index == ids.index(episode.episode_id))
            assert np.array_equal(steps.images[camera][rows], expected)
        first += episode.length

    index = np.random.default_rng(0).integers(0, len(steps), size=64)
    obs, chunks, images = memory_batch(steps, index, cameras, horizon=7)
    positions = step_positions(store.dataset(STEPS), steps)
    taken_obs, taken_chunks, taken_images = lance_take_batch(
        store.dataset(STEPS), positions, steps, index, cameras, horizon=7
    )
    assert np.array_equal(taken_obs, obs) and np.array_equal(taken_chunks, chunks)
    for camera in cameras:
        assert np.array_equal(taken_images[camera], images[camera])
        for k, step in enumerate(index.tolist()):
            episode = by_id[ids[int(steps.episode_index[step])]]
            stored = np.asarray(Image.open(io.BytesIO(episode.images[camera][int(steps.t[step])])))
            assert np.array_equal(images[camera][k], stored)
    assert np.array_equal(obs, np.concatenate([by_id[i].observations for i in ids])[index])
