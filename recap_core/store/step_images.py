"""Camera frames of loaded steps: read from the steps table's image blob columns and decoded once.

Steps are loaded without their frames (``EpisodeStore.load_steps``): frames are most of a step's bytes,
and only a network that reads cameras needs them, and only its own cameras. This reads those columns
for exactly the loaded steps, at the same pinned table version, and decodes every PNG once into uint8
arrays (kept as uint8: a quarter of the memory of floats; the network scales them to [0, 1]).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow
import pyarrow.compute as pc

from recap_core.steps import StepArrays
from schemas.steps import IMAGE_COLUMN_PREFIX


def load_step_images(
    dataset, steps: StepArrays, cameras: Sequence[str], image_size: int | None = None
) -> dict[str, np.ndarray]:
    """camera -> (N, H, W, 3) uint8 frames aligned with ``steps``, from the steps ``dataset`` (a Lance
    dataset at the version the steps were read from). ``image_size``: the frame size every frame must
    have (checked here, naming the episode, rather than deep inside an encoder)."""
    from recap_core.sim.cameras import decode_frames

    if not cameras or len(steps) == 0:
        return {camera: np.zeros((0, image_size or 0, image_size or 0, 3), np.uint8) for camera in cameras}
    available = [n for n in dataset.schema.names if n.startswith(IMAGE_COLUMN_PREFIX)]
    for camera in cameras:
        column = f"{IMAGE_COLUMN_PREFIX}{camera}"
        if column not in available:
            raise ValueError(
                f"the network reads camera {camera!r}, but the steps table has no column {column!r} "
                f"(image columns: {available or 'none'}): collect the episodes with that camera"
            )
    ids = steps.episodes["episode_id"].to_list()
    lengths = steps.episodes["length"].to_numpy().astype(np.int64)
    value_set = pyarrow.array(ids, type=pyarrow.string())
    rows = dataset.to_table(
        columns=["episode_id", "t"], filter=pc.field("episode_id").isin(value_set), with_row_id=True
    )
    episode = pc.index_in(rows.column("episode_id"), value_set=value_set).to_numpy(zero_copy_only=False)
    t = rows.column("t").to_numpy().astype(np.int64)
    keep = t < lengths[episode]  # leftovers of a crashed, differently sized attempt are not steps
    first_step = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    flat = first_step[episode[keep]] + t[keep]
    row_ids = rows.column("_rowid").to_numpy()[keep]
    order = np.argsort(flat, kind="stable")
    flat, row_ids = flat[order], row_ids[order]
    if len(flat) != len(steps) or not np.array_equal(flat, np.arange(len(steps))):
        raise RuntimeError(
            f"the steps table holds {len(flat)} steps of these episodes, {len(steps)} were loaded"
        )
    out = {}
    for camera in cameras:
        column = f"{IMAGE_COLUMN_PREFIX}{camera}"
        encoded = [
            b"" if blob is None else blob.read() for blob in dataset.take_blobs(column, ids=row_ids.tolist())
        ]
        empty = [i for i, frame in enumerate(encoded) if not frame]
        if empty:
            step = empty[0]
            episode_id = ids[int(steps.episode_index[step])]
            raise ValueError(
                f"episode {episode_id}: column {column!r} has no frame at t={int(steps.t[step])} "
                f"({len(empty)} steps without one): the network reads camera {camera!r}"
            )
        frames = decode_frames(encoded)
        if image_size is not None and frames.shape[1:3] != (image_size, image_size):
            raise ValueError(
                f"column {column!r}: stored frames are {frames.shape[1]}x{frames.shape[2]} px, the network "
                f"expects {image_size}x{image_size}"
            )
        out[camera] = frames
    return out


def with_step_images(
    dataset, steps: StepArrays, cameras: Sequence[str], image_size: int | None = None
) -> StepArrays:
    """``steps`` carrying the frames of ``cameras`` (unchanged when no camera is asked for)."""
    if not cameras:
        return steps
    return steps.with_images(load_step_images(dataset, steps, cameras, image_size))
