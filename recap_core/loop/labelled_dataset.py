"""The data pi^k is trained on, as a LeRobot v3.0 dataset that another trainer (lerobot-train, openpi) reads.

The frames are exactly the policy stage's selection: the task's episodes of iterations <= k at the table
versions V^k was trained on, labelled from the current indicators table under V^k (``read_aligned``, the
same reader and the same refusals as pi^k's: a missing row or a row of another value function fails).
Each frame carries ``value`` and ``advantage`` (from the advantages table), ``indicator`` (corrections
forced True, as the indicators table holds it) and its prompt as text, the paper's Fig. 3 convention:
``"<prompt>\\nAdvantage: positive"`` / ``"<prompt>\\nAdvantage: negative"``, or the plain prompt for the
frames whose indicator is dropped. The dropout is the policy stage's share, drawn deterministically per
frame from (episode_id, t, pi^k's seed), so a trainer that reads the prompts as they are trains on what
pi^k's own trainer would (up to which frames are dropped: ours draws per batch), and a re-materialisation
gives the same prompts. meta/info.json's ``recap`` key records the dropout and the lineage: V^k's
sha256, the thresholds row and every table version read.

The dataset lives beside the study's checkpoints, ``<root>/datasets/<task>/iteration-XXX``; it is written
under a hidden sibling and replaces the previous one only when complete.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from recap_core.checkpoints import CheckpointRef, checkpoint_sha256
from recap_core.checkpoints.layout import CheckpointLayout
from recap_core.lerobot_v3.episode import RecordedEpisode
from recap_core.lerobot_v3.staging import replacing_folder
from recap_core.lerobot_v3.writer import write_dataset
from recap_core.loop.context import RunContext
from recap_core.loop.data import task_steps
from recap_core.loop.labels import partition_filter, read_aligned
from recap_core.loop.seeding import run_seeds
from recap_core.loop.training_stages import iteration_value_versions
from recap_core.names import require_task_name
from recap_core.rules.indicators import indicator_prompt
from recap_core.steps import StepArrays
from recap_core.store import EpisodeStore
from recap_core.store.lerobot_export import stored_cameras
from schemas.derived import ADVANTAGES, INDICATORS, THRESHOLDS

DATASETS_FOLDER = "datasets"  # under the study's checkpoint root, beside value/ and policy/
LINEAGE_KEY = "recap"  # the key of meta/info.json holding the labels' lineage and the dropout
VALUE_COLUMN, ADVANTAGE_COLUMN, INDICATOR_COLUMN = "value", "advantage", "indicator"
DROPOUT_RULE = (
    "plain iff int.from_bytes(blake2b(f'{episode_id}/{t}/{seed}'.encode(), digest_size=8).digest(), "
    "'big') / 2**64 < share"
)
COLUMN_MEANINGS = {
    VALUE_COLUMN: "V^k(o_t): the value function's expected normalised return, in (-1, 0)",
    ADVANTAGE_COLUMN: "A_t under V^k (N-step lookahead; the return to the end when it is nearer)",
    INDICATOR_COLUMN: "I_t = A_t > eps_task, forced True on corrections (all True at iteration 0)",
}


def dataset_path(layout: CheckpointLayout, task: str, iteration: int) -> Path:
    """Where the labelled dataset of (task, iteration) lives: a pure function of both, inside the root
    (the task is a name by the names' rule)."""
    require_task_name(task)
    return layout.root / DATASETS_FOLDER / task / f"iteration-{int(iteration):03d}"


def dropped(episode_ids: np.ndarray, t: np.ndarray, seed: int, share: float) -> np.ndarray:
    """Which frames get the plain prompt: ``DROPOUT_RULE``, a hash any reader can recompute, so the
    choice depends on the frame and the seed only (not on the order frames are read in)."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"the indicator dropout share must be in [0, 1], got {share}")
    draws = np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(f"{e}/{int(s)}/{seed}".encode(), digest_size=8).digest(), "big")
            / 2**64
            for e, s in zip(episode_ids, t, strict=True)
        ),
        dtype=np.float64,
        count=len(t),
    )
    return draws < share


@dataclass(frozen=True)
class FrameLabels:
    """Per frame of a selection: V^k, A_t, I_t, whether the indicator is dropped; and the table versions
    the labels were read at."""

    value: np.ndarray
    advantage: np.ndarray
    indicator: np.ndarray
    plain: np.ndarray
    versions: dict[str, int]

    @property
    def counts(self) -> dict[str, int]:
        """Frames per prompt: positive and negative (indicator kept), plain (dropped)."""
        kept = ~self.plain
        return {
            "positive": int((self.indicator & kept).sum()),
            "negative": int((~self.indicator & kept).sum()),
            "plain": int(self.plain.sum()),
        }


@dataclass(frozen=True)
class LabelledDataset:
    """What was written, and everything it was made from (``lineage`` is meta/info.json's ``recap``)."""

    path: Path
    episodes: int
    frames: int
    counts: dict[str, int]
    cameras: list[str]
    video: bool
    lineage: dict[str, Any] = field(default_factory=dict)

    @property
    def dropout(self) -> dict[str, Any]:
        return self.lineage["indicator_dropout"]


def frame_labels(
    store: EpisodeStore,
    steps: StepArrays,
    task: str,
    iteration: int,
    value_sha256: str,
    seed: int,
    share: float,
) -> FrameLabels:
    """The labels of exactly ``steps``, made under the value checkpoint ``value_sha256``, and the draw of
    the frames whose indicator is dropped."""
    indicator, indicators_version = read_aligned(
        store, INDICATORS, "indicator", steps, task, iteration, value_sha256
    )
    value, advantages_version = read_aligned(store, ADVANTAGES, "value", steps, task, iteration, value_sha256)
    advantage, _ = read_aligned(
        store, ADVANTAGES, "advantage", steps, task, iteration, value_sha256, version=advantages_version
    )
    return FrameLabels(
        value=value.astype(np.float32),
        advantage=advantage.astype(np.float32),
        indicator=indicator.astype(bool),
        plain=dropped(steps.per_step("episode_id"), steps.t, seed, share),
        versions={ADVANTAGES: advantages_version, INDICATORS: indicators_version},
    )


def thresholds_row(store: EpisodeStore, task: str, iteration: int, value_sha256: str) -> tuple[dict, int]:
    """The thresholds row the indicators were labelled with, and the table version it was read at;
    refused when missing or made under another value function (the labels would not be its)."""
    dataset = store.dataset(THRESHOLDS)
    if dataset is None:
        raise ValueError(f"no {THRESHOLDS} table in {store.uri}: materialise the indicators stage first")
    rows = store.read_derived(THRESHOLDS, filter=partition_filter(task, iteration), version=dataset.version)
    if rows.is_empty():
        raise ValueError(
            f"{THRESHOLDS}: no row for task {task}, iteration {iteration}: materialise indicators first"
        )
    row = rows.row(0, named=True)
    if row["value_checkpoint_sha256"] != value_sha256:
        raise ValueError(
            f"{THRESHOLDS} (version {dataset.version}) of task {task}, iteration {iteration} was made under "
            f"value checkpoint {row['value_checkpoint_sha256'][:12]}, not the current {value_sha256[:12]}; "
            "re-materialise the stages after the value function"
        )
    return row, dataset.version


@functools.cache
def simulated_fps(task: str) -> float:
    """The control rate of a simulated task (what `recap export lerobot` records by default); a task's
    rate never changes, and making its environment to read it takes most of a second."""
    from recap_core.sim.tasks import get_task, task_names  # the simulators: only when asked

    if task not in task_names():
        raise ValueError(f"task {task!r} is not simulated: give the dataset's fps (its recording rate)")
    return 1.0 / get_task(task).make_env().control_period


def _chronological(episodes: pl.DataFrame) -> list[int]:
    """Rows of ``episodes`` oldest first (iteration, then collection time): the dataset's episode order,
    the same on every materialisation."""
    order = episodes.with_row_index("_row").sort("iteration", "collected_at", "episode_id")
    return order["_row"].to_list()


def _recorded(
    store: EpisodeStore, steps: StepArrays, labels: FrameLabels, cameras: list[str]
) -> Iterator[RecordedEpisode]:
    """The labelled episodes in the writer's terms, one at a time (one episode's frames in memory)."""
    lengths = steps.episodes["length"].to_numpy().astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    for row_index in _chronological(steps.episodes):
        row = steps.episodes.row(row_index, named=True)
        frames = slice(int(starts[row_index]), int(starts[row_index] + lengths[row_index]))
        kept = np.where(labels.plain[frames], None, labels.indicator[frames])
        yield RecordedEpisode(
            state=steps.observations[frames],
            action=steps.actions[frames],
            is_intervention=steps.is_correction[frames],
            images={camera: store.episode_images(row["episode_id"], camera) for camera in cameras},
            prompt=row["prompt"],
            task=row["task"],
            kind=row["kind"],
            success=bool(row["success"]),
            iteration=int(row["iteration"]),
            collected_by=row["collected_by"],
            source=row["source"],
            episode_id=row["episode_id"],
            collected_at=row["collected_at"],
            frame_prompts=[indicator_prompt(row["prompt"], i) for i in kept],
            columns={
                VALUE_COLUMN: labels.value[frames],
                ADVANTAGE_COLUMN: labels.advantage[frames],
                INDICATOR_COLUMN: labels.indicator[frames],
            },
        )


def _prompts(episodes: pl.DataFrame) -> list[dict[str, str]]:
    """Three prompts per task prompt, in meta/tasks.parquet's order: positive, negative, plain."""
    return [
        {"positive": indicator_prompt(p, True), "negative": indicator_prompt(p, False), "plain": p}
        for p in dict.fromkeys(episodes["prompt"].to_list())
    ]


def write_labelled_dataset(
    ctx: RunContext, task: str, iteration: int, *, video: bool = False, fps: float | None = None
) -> LabelledDataset:
    """Write (or replace) the labelled dataset of (task, iteration) and return what it holds. ``video``:
    cameras as mp4 video features instead of PNG image features; ``fps``: the recording rate (default:
    the simulated task's control rate)."""
    store, settings, layout = ctx.store, ctx.settings, ctx.checkpoints
    out = dataset_path(layout, task, iteration)
    value_dir = layout.value_of(task, iteration)
    value = CheckpointRef(str(value_dir.resolve()), checkpoint_sha256(value_dir))
    versions = iteration_value_versions(layout, task, iteration)
    steps = task_steps(store, task, iteration, versions)
    seed, share = run_seeds(settings).policy_network(iteration), settings.policy_finetune.indicator_dropout
    labels = frame_labels(store, steps, task, iteration, value.sha256, seed, share)
    thresholds, thresholds_version = thresholds_row(store, task, iteration, value.sha256)
    cameras = stored_cameras(store)
    prompts = _prompts(steps.episodes)
    lineage = {
        "task": task,
        "iteration": iteration,
        "study": ctx.study,
        "mode": thresholds["mode"],
        "prompts": prompts,
        "columns": COLUMN_MEANINGS,
        "frames": labels.counts,
        "indicator_dropout": {"share": share, "seed": seed, "rule": DROPOUT_RULE},
        "value_checkpoint": {"path": value.path, "sha256": value.sha256},
        "thresholds": thresholds,
        "table_versions": {**versions, **labels.versions, THRESHOLDS: thresholds_version},
        "lookahead": settings.lookahead,
        "settings_sha256": ctx.settings_sha256(),
    }
    robots = steps.episodes["robot"].unique(maintain_order=True).to_list()
    with replacing_folder(out) as fresh:
        summary = write_dataset(
            fresh,
            _recorded(store, steps, labels, cameras),
            fps=fps or simulated_fps(task),
            robot_type=str(robots[0]) if len(robots) == 1 else "mixed",
            video=video,
            prompts=[prompt for three in prompts for prompt in three.values()],
            info={LINEAGE_KEY: lineage},
        )
    return LabelledDataset(out, summary.episodes, summary.frames, labels.counts, cameras, video, lineage)
