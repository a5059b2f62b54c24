"""Writing LeRobot v3.0 video features with PyAV: one mp4 per camera and data file, episodes back to back.

PyAV is imported when a file is opened, so writing image features never needs it.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np

PIX_FMT = "yuv420p"  # what every player and LeRobot's own encoder use


def video_codec() -> str:
    """H.264 (libx264) when this PyAV build has it, else MPEG-4 part 2, which every FFmpeg build has."""
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


class Mp4Writer:
    """One camera's mp4 file: episodes are appended back to back, as LeRobot v3.0 concatenates them,
    so an episode starts at ``frames_written / fps`` seconds (its ``from_timestamp``)."""

    def __init__(self, path: Path, fps: float, width: int, height: int, codec: str | None = None) -> None:
        import av

        if width % 2 or height % 2:
            raise ValueError(
                f"{path.name}: {width}x{height} frames cannot be stored as {PIX_FMT} video (needs even "
                "sizes); export them as images instead"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.fps, self.codec = path, fps, codec or video_codec()
        self.frames_written = 0
        self._container = av.open(str(path), mode="w", format="mp4")
        rate = Fraction(fps).limit_denominator(1001)
        # g=2: a keyframe every other frame makes seeking to an episode start cheap (LeRobot does the same)
        options = {"crf": "18", "g": "2"} if self.codec == "libx264" else {"g": "2", "qscale": "2"}
        self._stream = self._container.add_stream(self.codec, rate=rate, options=options)
        self._stream.width, self._stream.height, self._stream.pix_fmt = width, height, PIX_FMT
        self.width, self.height = width, height
        if self.codec == "mpeg4":
            self._stream.codec_context.qscale = 2  # near-transparent quality; mpeg4 ignores "crf"
        self._time_base = 1 / rate

    def append(self, frames: Iterable[np.ndarray]) -> None:
        """Encode (H, W, 3) uint8 RGB frames after those already written."""
        import av

        for array in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
            frame.pts, frame.time_base = self.frames_written, self._time_base
            self._container.mux(self._stream.encode(frame))
            self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        self._container.mux(self._stream.encode())
        self._container.close()

    def feature_info(self) -> dict:
        """The ``info`` block LeRobot writes for a video feature in meta/info.json."""
        return {
            "video.height": self.height,
            "video.width": self.width,
            "video.codec": "h264" if self.codec == "libx264" else self.codec,
            "video.pix_fmt": PIX_FMT,
            "video.is_depth_map": False,
            "video.fps": self.fps,
            "video.channels": 3,
            "has_audio": False,
        }
