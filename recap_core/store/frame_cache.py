"""Decoded camera frames kept on local disk, so streamed image epochs after the first read frames at
memory speed instead of decoding every PNG again.

The streaming reader decodes each shard's frames when it reads the shard, and shards are reshuffled
every epoch, so without a cache every epoch pays the PNG decoding (2-3k frames/s here) again. Frames
are cached per episode and camera, keyed by the episode's ``content_hash``: the hash covers every
encoded frame (recap_core/store/batch.py), so a cached entry can never be stale, whatever version of
whichever store the episode is read from, and entries never need invalidating. An entry is a plain
``.npy`` file of (T, H, W, 3) uint8, written to a temporary name and renamed into place, so a crash or
two processes (torchrun ranks) writing the same entry leave either nothing or a whole file.

Its size is the decoded size of the frames read (12 KiB a frame at 64 px): delete the folder to reclaim
it, at the cost of decoding once more. The default folder is $RECAP_HOME/cache/frames
(``RECAP_FRAME_CACHE`` moves it; local disk, also when the store is on object storage).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from recap_core.locations import data_root


def default_frame_cache_dir() -> Path:
    return Path(os.environ.get("RECAP_FRAME_CACHE") or data_root() / "cache" / "frames")


class FrameCache:
    """Per-episode decoded frames under ``directory``, keyed by content hash, camera and frame size."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.hits = 0
        self.misses = 0

    def _path(self, content_hash: str, camera: str, size: int) -> Path:
        return self.directory / f"{size}px" / camera / content_hash[:2] / f"{content_hash}.npy"

    def get(self, content_hash: str, camera: str, size: int, length: int) -> np.ndarray | None:
        """The episode's frames (memory-mapped, read-only), or None if not cached. An entry of another
        shape (a file someone truncated or replaced) is treated as absent, and rewritten later."""
        path = self._path(content_hash, camera, size)
        try:
            frames = np.load(path, mmap_mode="r")
        except (FileNotFoundError, ValueError, OSError):
            self.misses += 1
            return None
        if frames.shape != (length, size, size, 3) or frames.dtype != np.uint8:
            self.misses += 1
            return None
        self.hits += 1
        return frames

    def put(self, content_hash: str, camera: str, frames: np.ndarray) -> None:
        size = int(frames.shape[1])
        path = self._path(content_hash, camera, size)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".partial")
        try:
            with os.fdopen(handle, "wb") as out:
                np.save(out, np.ascontiguousarray(frames, dtype=np.uint8))
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
