"""LeRobot video features: mp4 frames are imported frame-aligned with the parquet rows (v3.0 with several
episodes in one file, v2.1 with one file per episode), bad videos are refused naming episode and camera,
and `recap export lerobot --video` writes video features that import back."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from store_helpers import write_lerobot_dataset
from typer.testing import CliRunner

from pipelines.cli.main import app
from recap_core.store import EpisodeStore
from recap_core.store.lerobot import LeRobotFormatError, LeRobotOptions, iter_episodes, open_dataset

FPS = 10  # write_lerobot_dataset's rate: timestamp = frame_index / 10
SIZE = 32
LENGTHS = [7, 9, 5]
KEYS = {"observation.images.front": "front", "observation.images.top.left": "top_left"}


def synthetic_frames(count: int, first: int, camera: int = 0) -> np.ndarray:
    """(count, 32, 32, 3) smooth frames (a codec keeps them close) that differ from frame to frame
    (so a frame taken one step off is far from the original): drifting sinusoids plus a per-frame level."""
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    frames = []
    for index in range(first, first + count):
        phase = 0.35 * index + camera
        red = 128 + 100 * np.sin(2 * np.pi * (0.5 * x + phase / 5))
        green = 128 + 100 * np.cos(2 * np.pi * (0.5 * y + phase / 7))
        blue = np.full_like(x, 30 + 7 * (index % 30))
        frames.append(np.stack([red, green, blue], axis=-1).astype(np.uint8))
    return np.stack(frames)


# LeRobot's default encoding (libsvtav1, g=2, crf=30, preset 12) and H.264 with the default GOP (an episode
# in the middle of a file then does not start on a keyframe and the importer must seek before it)
AV1 = ("libsvtav1", {"g": "2", "crf": "30", "preset": "12"})
H264 = ("libx264", {})
CODECS = [
    H264,
    pytest.param(AV1, marks=pytest.mark.skipif("libsvtav1" not in av.codecs_available, reason="no AV1")),
]


def encode_mp4(frames: np.ndarray, path: Path, codec: tuple[str, dict] = H264) -> None:
    """An mp4 the way LeRobot's encoder writes one: yuv420p at the dataset's fps."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec[0], rate=FPS, options=codec[1])
        stream.width, stream.height, stream.pix_fmt = SIZE, SIZE, "yuv420p"
        for array in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode())


def decode_all(path: Path) -> dict[int, np.ndarray]:
    """Every frame of a file by frame number (pts time x fps), read straight through with PyAV."""
    with av.open(str(path)) as container:
        return {
            round(frame.time * FPS): frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)
        }


def png_pixels(encoded: list[bytes]) -> np.ndarray:
    return np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in encoded])


def mean_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def add_video_features(root: Path, info_updates: dict | None = None) -> None:
    info = json.loads((root / "meta" / "info.json").read_text())
    for key in KEYS:
        info["features"][key] = {
            "dtype": "video",
            "shape": [SIZE, SIZE, 3],
            "names": ["height", "width", "channels"],
            "info": {"video.fps": float(FPS), "video.codec": "h264", "video.pix_fmt": "yuv420p"},
        }
    info.update(info_updates or {})
    (root / "meta" / "info.json").write_text(json.dumps(info))


def write_v3_video_dataset(
    root: Path, short_by: int = 0, codec: tuple[str, dict] = H264
) -> dict[str, list[np.ndarray]]:
    """Episodes 0 and 1 concatenated in file-000 of each camera (episode 1 starts at 0.7 s), episode 2
    alone in file-001, with the videos/* columns in meta/episodes as LeRobot v3.0 writes them.
    ``short_by`` drops that many frames from the end of file-000. Returns the frames per camera/episode."""
    write_lerobot_dataset(root, LENGTHS, rows_per_file=8)
    add_video_features(
        root, {"video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"}
    )
    starts = np.concatenate([[0], np.cumsum(LENGTHS)])
    files, offsets = [0, 0, 1], [0, LENGTHS[0], 0]  # episode -> file index, first frame in that file
    frames: dict[str, list[np.ndarray]] = {}
    meta_path = root / "meta" / "episodes" / "chunk-000" / "file-000.parquet"
    meta = pq.read_table(meta_path)
    for camera, key in enumerate(KEYS):
        frames[key] = [synthetic_frames(n, int(starts[e]), camera) for e, n in enumerate(LENGTHS)]
        first_file = np.concatenate(frames[key][:2])
        encode_mp4(
            first_file[: len(first_file) - short_by], root / f"videos/{key}/chunk-000/file-000.mp4", codec
        )
        encode_mp4(frames[key][2], root / f"videos/{key}/chunk-000/file-001.mp4", codec)
        columns = {
            "chunk_index": pa.array([0, 0, 0], pa.int64()),
            "file_index": pa.array(files, pa.int64()),
            "from_timestamp": pa.array([o / FPS for o in offsets], pa.float64()),
            "to_timestamp": pa.array(
                [(o + n) / FPS for o, n in zip(offsets, LENGTHS, strict=True)], pa.float64()
            ),
        }
        for name, values in columns.items():
            meta = meta.append_column(f"videos/{key}/{name}", values)
    pq.write_table(meta, meta_path)
    return frames


def write_v21_video_dataset(root: Path) -> dict[str, list[np.ndarray]]:
    """One mp4 per episode and camera at videos/chunk-000/<key>/episode_XXXXXX.mp4 (LeRobot v2.1)."""
    write_lerobot_dataset(root, LENGTHS, version="v2.1")
    template = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
    add_video_features(root, {"video_path": template, "chunks_size": 1000})
    frames: dict[str, list[np.ndarray]] = {}
    for camera, key in enumerate(KEYS):
        frames[key] = [synthetic_frames(n, 100 * e, camera) for e, n in enumerate(LENGTHS)]
        for e, episode_frames in enumerate(frames[key]):
            path = root / template.format(episode_chunk=0, video_key=key, episode_index=e)
            encode_mp4(episode_frames, path)
    return frames


def import_all(root: Path, **options) -> list:
    dataset = open_dataset(str(root))
    return list(iter_episodes(dataset, LeRobotOptions(kind="demo", assume_success=True, **options)))


def assert_frames_match(
    episodes, frames: dict[str, list[np.ndarray]], videos: dict, tolerance: float = 4.0
) -> None:
    """Stored PNGs equal the mp4's own decoded frames exactly, and the synthetic originals within codec
    tolerance; the originals one frame off are far worse, so a misaligned import could not pass."""
    for e, episode in enumerate(episodes):
        for key, camera in KEYS.items():
            stored = png_pixels(episode.images[camera])
            assert stored.shape == (LENGTHS[e], SIZE, SIZE, 3)
            path, first = videos[(e, key)]
            decoded = decode_all(path)
            np.testing.assert_array_equal(stored, np.stack([decoded[first + t] for t in range(LENGTHS[e])]))
            original = frames[key][e]
            aligned = mean_error(stored, original)
            shifted = min(mean_error(stored[1:], original[:-1]), mean_error(stored[:-1], original[1:]))
            assert aligned < tolerance, (e, key, aligned)
            assert shifted > 2 * tolerance, (e, key, aligned, shifted)


@pytest.mark.parametrize("codec", CODECS, ids=["h264", "av1"])
def test_v3_video_features_import_frame_aligned(tmp_path, codec):
    frames = write_v3_video_dataset(tmp_path / "ds", codec=codec)
    episodes = import_all(tmp_path / "ds")
    assert [e.length for e in episodes] == LENGTHS
    assert all(sorted(e.images) == ["front", "top_left"] for e in episodes)
    video = tmp_path / "ds" / "videos"
    locations = {
        (e, key): (video / key / "chunk-000" / f"file-00{file}.mp4", first)
        for key in KEYS
        for e, (file, first) in enumerate([(0, 0), (0, LENGTHS[0]), (1, 0)])
    }
    assert_frames_match(episodes, frames, locations, tolerance=4.0 if codec == H264 else 6.0)
    store = EpisodeStore(tmp_path / "lance")
    assert len(store.add_episodes(episodes).added) == 3
    assert store.episode_images(episodes[1].episode_id, "top_left") == episodes[1].images["top_left"]


def test_v21_video_per_episode_imports_frame_aligned(tmp_path):
    frames = write_v21_video_dataset(tmp_path / "ds")
    episodes = import_all(tmp_path / "ds")
    locations = {
        (e, key): (tmp_path / "ds" / f"videos/chunk-000/{key}/episode_{e:06d}.mp4", 0)
        for key in KEYS
        for e in range(len(LENGTHS))
    }
    assert_frames_match(episodes, frames, locations)


def test_states_only_skips_video_decoding(tmp_path):
    write_v3_video_dataset(tmp_path / "ds")
    (tmp_path / "ds" / "videos" / "observation.images.front" / "chunk-000" / "file-000.mp4").unlink()
    episodes = import_all(tmp_path / "ds", decode_videos=False)
    assert [e.images for e in episodes] == [None, None, None]
    runner = CliRunner()
    args = ["ingest", "lerobot", str(tmp_path / "ds"), "--kind", "demo", "--assume-success"]
    result = runner.invoke(app, [*args, "--no-decode-videos", "--store", str(tmp_path / "lance")])
    assert result.exit_code == 0, result.output
    assert (
        "not imported (video features): observation.images.front, observation.images.top.left"
        in result.output
    )


def test_fleet_drop_folder_decodes_videos_unless_its_options_say_states_only(tmp_path):
    from recap_core.loop.fleet import ingest_pending

    store = EpisodeStore(tmp_path / "lance")
    for name, options in (("cams", {}), ("states", {"decode_videos": False})):
        write_v3_video_dataset(tmp_path / "drop" / name)
        sidecar = {"task": f"fleet-{name}", "kind": "demo", "assume_success": True, **options}
        (tmp_path / "drop" / name / "recap_import.json").write_text(json.dumps(sidecar))
    (tmp_path / "drop/states/videos/observation.images.front/chunk-000/file-000.mp4").unlink()
    assert ingest_pending(store, tmp_path / "drop", "fleet-cams", 1) == {"cams": 3}
    assert ingest_pending(store, tmp_path / "drop", "fleet-states", 1) == {"states": 3}
    cams = store.episode_images(store.episodes(task="fleet-cams").frame["episode_id"][0], "front")
    states = store.episode_images(store.episodes(task="fleet-states").frame["episode_id"][0], "front")
    assert all(frame.startswith(b"\x89PNG") for frame in cams) and set(states) == {b""}


def _ingest_fails(root: Path, store: Path, *messages: str) -> None:
    runner = CliRunner()
    before = EpisodeStore(store).versions()
    args = ["ingest", "lerobot", str(root), "--kind", "demo", "--assume-success", "--store", str(store)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    for message in (*messages, "nothing was written"):
        assert message in result.output, result.output
    assert EpisodeStore(store).versions() == before and EpisodeStore(store).episodes().frame.is_empty()


def test_missing_or_short_videos_are_refused_naming_episode_and_camera(tmp_path):
    write_v3_video_dataset(tmp_path / "missing")
    (tmp_path / "missing" / "videos" / "observation.images.top.left" / "chunk-000" / "file-001.mp4").unlink()
    with pytest.raises(
        LeRobotFormatError,
        match=r"episode 2: camera 'observation.images.top.left': video file .*file-001.mp4 is missing",
    ):
        import_all(tmp_path / "missing")
    _ingest_fails(tmp_path / "missing", tmp_path / "lance", "episode 2", "observation.images.top.left")

    write_v3_video_dataset(tmp_path / "short", short_by=2)  # episode 1's last two frames are absent
    with pytest.raises(
        LeRobotFormatError,
        match=r"episode 1: camera 'observation.images.front': no video frame within 0.0500s "
        r"of timestamp 0.7000s \(1.4000s into",
    ):
        import_all(tmp_path / "short")
    _ingest_fails(tmp_path / "short", tmp_path / "lance", "episode 1", "timestamp 0.7000s")

    write_v21_video_dataset(tmp_path / "v21")
    encode_mp4(
        synthetic_frames(3, 0),
        tmp_path / "v21" / "videos/chunk-000/observation.images.front/episode_000001.mp4",
    )
    with pytest.raises(
        LeRobotFormatError,
        match=r"episode 1: camera 'observation.images.front': no video frame .* timestamp 0.3000s",
    ):
        import_all(tmp_path / "v21")


def test_garbage_video_and_short_span_in_meta_are_refused(tmp_path):
    write_v3_video_dataset(tmp_path / "garbage")
    (tmp_path / "garbage" / "videos/observation.images.front/chunk-000/file-001.mp4").write_bytes(
        b"not a video"
    )
    with pytest.raises(
        LeRobotFormatError, match=r"episode 2: camera 'observation.images.front': .*not a readable"
    ):
        import_all(tmp_path / "garbage")

    write_v3_video_dataset(tmp_path / "span")
    path = tmp_path / "span" / "meta" / "episodes" / "chunk-000" / "file-000.parquet"
    meta = pq.read_table(path)
    column = "videos/observation.images.front/to_timestamp"
    index = meta.schema.get_field_index(column)
    pq.write_table(meta.set_column(index, column, pa.array([0.5, 1.6, 0.5], pa.float64())), path)
    span_error = r"episode 0: camera 'observation.images.front': timestamp 0.6000s is past the episode's span"
    with pytest.raises(LeRobotFormatError, match=span_error):
        import_all(tmp_path / "span")


def test_query_reads_imported_video_frames(tmp_path):
    write_v3_video_dataset(tmp_path / "ds")
    store = EpisodeStore(tmp_path / "lance")
    episodes = import_all(tmp_path / "ds")
    store.add_episodes(episodes)
    runner = CliRunner()
    for output in ("table", "csv", "json"):
        for sql in (
            "SELECT * FROM steps",
            "SELECT episode_id, t, image_front, image_top_left FROM steps ORDER BY t",
        ):
            result = runner.invoke(
                app, ["query", sql, "--store", str(tmp_path / "lance"), "--format", output]
            )
            assert result.exit_code == 0, (output, sql, result.output)
    result = runner.invoke(app, ["query", "SELECT count(*) AS n, count(image_front) AS frames FROM steps",
                                 "--store", str(tmp_path / "lance"), "--format", "json"])  # fmt: skip
    assert json.loads(result.stdout) == [{"n": sum(LENGTHS), "frames": sum(LENGTHS)}]
    # CSV and JSON carry encoded frames as base64 (polars cannot write binary to either)
    sql = f"SELECT t, image_front FROM steps WHERE episode_id = '{episodes[1].episode_id}' ORDER BY t"
    result = runner.invoke(app, ["query", sql, "--store", str(tmp_path / "lance"), "--format", "json"])
    rows = json.loads(result.stdout)
    assert [base64.b64decode(row["image_front"]) for row in rows] == episodes[1].images["front"]


def _camera_episodes(count: int) -> list:
    """Intervention episodes with two 32x32 cameras of smooth, distinct PNG frames."""
    from recap_core.episode import Episode
    from recap_core.sim.cameras import encode_frames

    rng = np.random.default_rng(1)
    episodes = []
    for index in range(count):
        length = 6 + 2 * index
        pixels = {
            camera: synthetic_frames(length, 40 * index, c) for c, camera in enumerate(("wrist", "top"))
        }
        episodes.append(
            Episode(
                episode_id=f"camera-episode-{index}",
                task="fleet-pick",
                prompt="pick up the cube",
                kind="intervention",
                success=index % 2 == 0,
                observations=rng.normal(size=(length, 5)).astype(np.float32),
                actions=rng.uniform(-1, 1, size=(length, 2)).astype(np.float32),
                is_correction=np.arange(length) % 4 == 0,
                robot="arm-7",
                images=encode_frames(pixels),
            )
        )
    return episodes


def _assert_round_trip(before: list, after: list) -> None:
    """States, actions and labels exactly; frames within codec tolerance and aligned (one step off is
    far worse)."""
    assert [e.length for e in after] == [e.length for e in before]
    for original, imported in zip(before, after, strict=True):
        np.testing.assert_array_equal(imported.observations, original.observations)
        np.testing.assert_array_equal(imported.actions, original.actions)
        np.testing.assert_array_equal(imported.is_correction, original.is_correction)
        assert (imported.success, imported.prompt) == (original.success, original.prompt)
        for camera in ("wrist", "top"):
            a, b = png_pixels(imported.images[camera]), png_pixels(original.images[camera])
            aligned, shifted = mean_error(a, b), mean_error(a[1:], b[:-1])
            assert aligned < 4.0 and shifted > 3 * aligned, (camera, aligned, shifted)


def test_export_with_videos_imports_back(tmp_path):
    from recap_core.store.lerobot_export import export_lerobot
    from recap_core.store.lerobot_video import video_codec

    source = EpisodeStore(tmp_path / "source")
    episodes = _camera_episodes(3)
    source.add_episodes(episodes)
    out = tmp_path / "export"
    runner = CliRunner()
    args = ["export", "lerobot", str(out), "--task", "fleet-pick", "--kind", "intervention", "--fps", "15"]
    result = runner.invoke(app, [*args, "--video", "--store", str(source.uri)])
    assert result.exit_code == 0, result.output
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    wrist = info["features"]["observation.images.wrist"]
    codec = "h264" if video_codec() == "libx264" else "mpeg4"
    assert wrist == {
        "dtype": "video",
        "shape": [SIZE, SIZE, 3],
        "names": ["height", "width", "channels"],
        "info": {"video.height": SIZE, "video.width": SIZE, "video.codec": codec, "video.pix_fmt": "yuv420p",
                 "video.is_depth_map": False, "video.fps": 15.0, "video.channels": 3, "has_audio": False},
    }  # fmt: skip
    assert sorted(p.relative_to(out).as_posix() for p in out.glob("videos/**/*.mp4")) == [
        "videos/observation.images.top/chunk-000/file-000.mp4",
        "videos/observation.images.wrist/chunk-000/file-000.mp4",
    ]
    assert "observation.images.wrist" not in pq.read_schema(out / "data/chunk-000/file-000.parquet").names
    meta = pq.read_table(out / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [row["videos/observation.images.wrist/from_timestamp"] for row in meta] == pytest.approx(
        [0, 6 / 15, 14 / 15]
    )
    assert [row["videos/observation.images.wrist/to_timestamp"] for row in meta] == pytest.approx(
        [6 / 15, 14 / 15, 24 / 15]
    )
    stats = json.loads((out / "meta" / "stats.json").read_text())
    top = np.concatenate([png_pixels(e.images["top"]) for e in episodes]).reshape(-1, 3) / 255.0
    assert stats["observation.images.top"]["count"] == [24]
    for name, value in (("mean", top.mean(0)), ("std", top.std(0)), ("min", top.min(0)), ("max", top.max(0))):
        np.testing.assert_allclose(np.asarray(stats["observation.images.top"][name]), value.reshape(3, 1, 1))
    sidecar = json.loads((out / "recap_import.json").read_text())
    imported = import_all_with(out, sidecar)
    _assert_round_trip(episodes, imported)

    # several data files: each starts new videos, and episodes are still located right
    export_lerobot(source, tmp_path / "split", task="fleet-pick", kind="intervention", fps=15,
                   frames_per_file=10, video=True)  # fmt: skip
    assert len(list((tmp_path / "split").glob("videos/observation.images.top/chunk-000/*.mp4"))) == 3
    _assert_round_trip(episodes, import_all_with(tmp_path / "split", sidecar))


def test_video_export_refuses_odd_frame_sizes_and_leaves_nothing(tmp_path):
    from recap_core.episode import Episode
    from recap_core.sim.cameras import encode_frames
    from recap_core.store.lerobot_export import export_lerobot

    store = EpisodeStore(tmp_path / "source")
    odd = {"wrist": np.zeros((4, 31, 32, 3), np.uint8)}
    store.add_episodes([Episode(episode_id="odd", task="t", prompt="p", kind="demo", success=True,
                                observations=np.zeros((4, 2)), actions=np.zeros((4, 1)),
                                images=encode_frames(odd))])  # fmt: skip
    with pytest.raises(ValueError, match=r"32x31 frames cannot be stored as yuv420p video"):
        export_lerobot(store, tmp_path / "out", task="t", kind="demo", fps=10, video=True)
    assert list(tmp_path.iterdir()) == [tmp_path / "source"]


def import_all_with(root: Path, sidecar: dict) -> list:
    dataset = open_dataset(str(root))
    options = LeRobotOptions(
        kind=sidecar["kind"],
        task=sidecar["task"],
        success_column=sidecar["success_column"],
        intervention_column=sidecar["intervention_column"],
    )
    return list(iter_episodes(dataset, options))


def test_bench_lerobot_video_prints_json():
    result = CliRunner().invoke(app, ["bench", "lerobot-video", "--frames", "250", "--size", "16", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["frames"] == report["decoded_frames"] == 250 and report["episodes"] == 2
    assert report["import_frames_per_s"] > 0 and report["mp4_bytes"] < report["png_bytes"]
