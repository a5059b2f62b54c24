"""The in-memory training view of steps: flat numpy arrays, episodes contiguous and ordered by t.

Training samples random (observation, action-chunk) pairs hundreds of thousands of times; a per-row read
from Lance is ~50x slower than indexing a numpy array, so every stage loads the columns it needs once
(``EpisodeStore.load_steps``) and then works on this structure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl


@dataclass(frozen=True)
class StepArrays:
    """Steps of a set of episodes.

    ``episodes`` has one row per episode, in the order their steps appear, with at least the columns
    episode_id, task, prompt, kind, success, length, iteration. ``episode_index[i]`` is the row in
    ``episodes`` that step ``i`` belongs to. ``images``: camera -> decoded frames (N, H, W, C) uint8,
    only for the cameras a network reads (loaded on request: frames are most of a step's bytes).
    """

    observations: np.ndarray  # (N, obs_dim) float32
    actions: np.ndarray  # (N, action_dim) float32
    episode_index: np.ndarray  # (N,) int64
    t: np.ndarray  # (N,) int64
    is_correction: np.ndarray  # (N,) bool
    episodes: pl.DataFrame
    images: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.actions)
        for name in ("observations", "episode_index", "t", "is_correction"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"StepArrays.{name} has {len(getattr(self, name))} rows, actions has {n}")
        for camera, frames in self.images.items():
            if len(frames) != n:
                raise ValueError(f"StepArrays.images[{camera!r}] has {len(frames)} frames, actions has {n}")

    def with_images(self, images: Mapping[str, np.ndarray]) -> StepArrays:
        """The same steps carrying these cameras' frames (one per step) as well."""
        return dataclasses.replace(self, images={**self.images, **images})

    def without_images(self) -> StepArrays:
        """The same steps without frames: for work on labels that would otherwise copy every frame."""
        return dataclasses.replace(self, images={}) if self.images else self

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def episode_start(self) -> np.ndarray:
        """Flat index of the first step of each step's episode, (N,)."""
        return np.arange(len(self), dtype=np.int64) - self.t

    @property
    def episode_end(self) -> np.ndarray:
        """Flat index one past the last step of each step's episode, (N,)."""
        lengths = self.episodes["length"].to_numpy().astype(np.int64)
        return self.episode_start + lengths[self.episode_index]

    def per_step(self, column: str) -> np.ndarray:
        """Broadcast an episode-level column (task, success, kind, ...) to steps."""
        return self.episodes[column].to_numpy()[self.episode_index]

    def require_finite(self, values: np.ndarray, column: str) -> None:
        """Raise naming the first episode and t where ``values`` (one row per step) has NaN or inf.

        Training on one bad frame silently poisons a whole network; the error says which frame it was.
        """
        finite = np.isfinite(np.asarray(values)).reshape(len(values), -1).all(axis=1)
        if not finite.all():
            bad = int(np.argmin(finite))
            episode_id = self.episodes["episode_id"][int(self.episode_index[bad])]
            value = np.asarray(values)[bad]
            raise ValueError(
                f"episode {episode_id}: column {column!r} at t={self.t[bad]} is {value} (NaN or inf)"
            )

    def select_episodes(self, mask: np.ndarray | Sequence[bool]) -> StepArrays:
        """Keep the episodes where ``mask`` (one entry per episode row) is True."""
        keep_episode = np.asarray(mask, dtype=bool)
        keep_step = keep_episode[self.episode_index]
        new_index = np.cumsum(keep_episode) - 1
        return StepArrays(
            observations=self.observations[keep_step],
            actions=self.actions[keep_step],
            episode_index=new_index[self.episode_index[keep_step]],
            t=self.t[keep_step],
            is_correction=self.is_correction[keep_step],
            episodes=self.episodes.filter(pl.Series(keep_episode)),
            images={camera: frames[keep_step] for camera, frames in self.images.items()},
        )


def action_chunks(
    actions: np.ndarray, episode_end: np.ndarray, index: np.ndarray, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """Action chunks a[t:t+H] for the steps at flat ``index``; never crosses an episode boundary.

    Returns (chunks (B, H, action_dim), mask (B, H) bool). Past the episode's end the chunk repeats the
    last action (a valid "hold" command) and the mask is False there, so losses can ignore padding.
    """
    index = np.asarray(index, dtype=np.int64)
    offsets = index[:, None] + np.arange(horizon, dtype=np.int64)[None, :]
    end = episode_end[index][:, None]
    mask = offsets < end
    np.minimum(offsets, end - 1, out=offsets)
    return actions[offsets], mask


def float_tensor(array: np.ndarray):
    """A float32 torch tensor over ``array``: shared when it is writable, copied when it is not.

    Arrays read zero-copy from Arrow/Lance are read-only; torch cannot mark a tensor read-only and warns
    that writing would be undefined, so those get one copy (training never writes its inputs either way).
    """
    import torch

    array = np.ascontiguousarray(array, dtype=np.float32)
    if not array.flags.writeable:
        array = array.copy()
    return torch.from_numpy(array)
