"""LeRobot video features with PyAV: where an episode's frames are, and decoding them (writing them:
``recap_core.lerobot_v3.mp4``, re-exported here).

LeRobot keeps camera streams as mp4 files next to the parquet data. In format v3.0 several episodes are
concatenated in one file per camera (``videos/<key>/chunk-XXX/file-XXX.mp4``) and each episode's row in
``meta/episodes`` says which file and at which time (``from_timestamp``) its frames start; in v2.1 every
episode has its own file (``videos/chunk-XXX/<key>/episode_XXXXXX.mp4``) starting at 0. A frame belongs to
the parquet row whose ``timestamp`` (plus the episode's start) is nearest to the frame's presentation
time, as LeRobot's own loader matches them. The store keeps encoded frames, so decoded frames become
lossless PNG: the pixels stored are exactly the pixels the video decodes to.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recap_core.lerobot_v3.frames import png_bytes
from recap_core.lerobot_v3.layout import V3_VIDEO_PATH
from recap_core.lerobot_v3.mp4 import PIX_FMT, Mp4Writer, video_codec  # noqa: F401 - re-exported

V21_VIDEO_PATH = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"


class VideoDecodeError(ValueError):
    """A video file is missing, unreadable, or lacks a frame the data asks for; the message names it."""


@dataclass(frozen=True)
class VideoSegment:
    """Where one episode's frames of one camera are: a file, and the time its first frame is shown."""

    path: Path
    start: float  # seconds into the file (LeRobot's ``from_timestamp``; 0 for v2.1)
    end: float | None = None  # where the next episode's frames begin (``to_timestamp``), if known


def camera_name(video_key: str) -> str:
    """``observation.images.front.left`` -> ``front_left``: the store column is ``image_<camera>``."""
    return video_key.removeprefix("observation.images.").replace(".", "_")


def v21_segment(root: Path, info: dict, video_key: str, episode_index: int) -> VideoSegment:
    """v2.1: one file per episode and camera, in the chunk ``episode_index // chunks_size``."""
    template = info.get("video_path") or V21_VIDEO_PATH
    chunk = episode_index // int(info.get("chunks_size") or 1000)
    relative = template.format(video_key=video_key, episode_chunk=chunk, episode_index=episode_index)
    return VideoSegment(root / relative, 0.0)


def v3_segment(
    root: Path, info: dict, video_key: str, chunk: int, file: int, start: float, end: float | None
) -> VideoSegment:
    """v3.0: the file and time span that the episode's ``meta/episodes`` row names."""
    template = info.get("video_path") or V3_VIDEO_PATH
    relative = template.format(video_key=video_key, chunk_index=chunk, file_index=file)
    return VideoSegment(root / relative, start, end)


def v3_location_columns(video_key: str) -> list[str]:
    """The ``meta/episodes`` columns that locate an episode's frames of ``video_key`` (v3.0)."""
    prefix = f"videos/{video_key}/"
    return [prefix + "chunk_index", prefix + "file_index", prefix + "from_timestamp"]


def decode_at(segment: VideoSegment, timestamps: np.ndarray, fps: float) -> list[bytes]:
    """PNG frames of ``segment`` shown nearest to ``timestamps`` (seconds from the segment's start).

    The file is opened once and read from the keyframe before the first timestamp; each timestamp takes
    the decoded frame whose presentation time is nearest, which must be within half a frame period
    (``1 / (2 fps)``), otherwise the video lacks that frame and a VideoDecodeError names the timestamp.
    """
    import av
    from av.video.reformatter import VideoReformatter

    if not segment.path.is_file():
        raise VideoDecodeError(f"video file {segment.path} is missing")
    times = segment.start + np.asarray(timestamps, dtype=np.float64)
    if len(times) and np.any(np.diff(times) < 0):
        raise VideoDecodeError(f"{segment.path}: timestamps must not decrease")
    tolerance = 0.5 / fps
    if segment.end is not None and len(times) and times[-1] > segment.end + tolerance:
        raise VideoDecodeError(
            f"timestamp {times[-1] - segment.start:.4f}s is past the episode's span in {segment.path} "
            f"({segment.start:.4f}s to {segment.end:.4f}s, meta/episodes): fewer video frames than rows"
        )
    try:
        with av.open(str(segment.path)) as container:
            if not container.streams.video:
                raise VideoDecodeError(f"{segment.path} has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if len(times) and times[0] - tolerance > 0 and stream.time_base is not None:
                container.seek(int((times[0] - tolerance) / stream.time_base), stream=stream)
            frames = _timed_frames(container.decode(stream), segment.path)
            chosen = nearest_frames(frames, times, tolerance, segment.start)
            # one converter for the file: a frame's own (to_image) builds a new swscale context per frame,
            # which made the import ~10x slower than decoding
            to_rgb = VideoReformatter()
            return [png_bytes(to_rgb.reformat(frame, format="rgb24").to_ndarray()) for frame in chosen]
    except av.FFmpegError as error:
        raise VideoDecodeError(f"{segment.path}: not a readable video ({error})") from None


def _timed_frames(frames: Iterable, path: Path) -> Iterator[tuple[float, object]]:
    for frame in frames:
        if frame.time is None:
            raise VideoDecodeError(f"{path}: a frame has no presentation time (pts)")
        yield float(frame.time), frame


def nearest_frames(
    frames: Iterable[tuple[float, object]], times: np.ndarray, tolerance: float, start: float = 0.0
) -> Iterator:
    """For each of the non-decreasing ``times``, the frame shown nearest to it, in one pass over
    ``frames`` (in presentation order) that keeps only the previous frame: no episode is held decoded.
    ``start`` (the episode's first frame time) only makes error messages speak in the data's timestamps."""
    query = 0
    previous: tuple[float, object] | None = None
    for current in frames:
        while query < len(times):
            time = times[query]
            if previous is not None and time <= (previous[0] + current[0]) / 2:
                chosen = previous  # the previous frame is at least as near as this one and all later ones
            elif previous is None and time <= current[0]:
                chosen = current  # before the first decoded frame
            else:
                break
            yield _within(chosen, time, tolerance, start)
            query += 1
        if query == len(times):
            return
        previous = current
    for time in times[query:]:
        if previous is None:
            raise VideoDecodeError(
                f"no video frame at timestamp {time - start:.4f}s: the video has no frames"
            )
        yield _within(previous, time, tolerance, start)


def _within(chosen: tuple[float, object], time: float, tolerance: float, start: float) -> object:
    if abs(chosen[0] - time) > tolerance + 1e-9:
        raise VideoDecodeError(
            f"no video frame within {tolerance:.4f}s of timestamp {time - start:.4f}s ({time:.4f}s into the "
            f"file; nearest frame at {chosen[0]:.4f}s): the video is shorter than the data or not aligned"
        )
    return chosen[1]
