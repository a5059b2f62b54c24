"""The names a LeRobot v3.0 dataset of ours uses on disk: LeRobot's layout, and the ``recap/...`` columns
and ``recap_import.json`` keys through which the importer reads an episode back exactly as it was.

One module for both sides (the writer and ``recap_core.store.lerobot``), so the two cannot disagree on
a column name.
"""

from __future__ import annotations

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000  # files per chunk folder, as LeRobot names them
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
V3_VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_META_FILE = "meta/episodes/chunk-000/file-000.parquet"
IMAGE_FEATURE_PREFIX = "observation.images."

SUCCESS_COLUMN = "next.success"  # per frame: True on the last frame of a successful episode
INTERVENTION_COLUMN = "is_intervention"  # per frame: a human provided this action (a correction)

# Per-episode columns of meta/episodes (besides LeRobot's own): what the store knows of an episode.
TASK_COLUMN = "recap/task"  # the recap task name (LeRobot's ``tasks`` holds the prompt)
KIND_COLUMN = "recap/kind"  # demo | autonomous | intervention
EPISODE_SUCCESS_COLUMN = "recap/success"  # the episode's label (also in "success", and in the frames)
COLLECTED_BY_COLUMN = "recap/collected_by"  # policy checkpoint or operator
ITERATION_COLUMN = "recap/iteration"  # the RECAP iteration it was stored under (informative)
EPISODE_ID_COLUMN = "recap/episode_id"  # its id in the store it came from (informative)
SOURCE_COLUMN = "recap/source"  # where the store had ingested it from (informative)
COLLECTED_AT_COLUMN = "recap/collected_at"  # ISO 8601 UTC time it was recorded (informative)
POLICY_COLUMN = "recap/policy"  # JSON of the policy server's metadata that drove it (informative)
PROMPT_COLUMN = "recap/prompt"  # the episode's prompt, when its frames carry other prompts (written then)

# Per-frame columns the writer itself fills; an episode's extra columns take other names.
WRITER_FRAME_COLUMNS = (
    "observation.state",
    "action",
    "timestamp",
    "frame_index",
    "episode_index",
    "index",
    "task_index",
    SUCCESS_COLUMN,
    "next.done",
    INTERVENTION_COLUMN,
)

IMPORT_FILE = "recap_import.json"
"""Beside ``meta/``: how the importer reads the dataset. Its keys are ``LeRobotOptions`` fields: ``task``
or ``task_column``, ``kind`` or ``kind_column`` (a fixed value for every episode, or the meta/episodes
column holding each episode's), ``success_column``, ``intervention_column``, ``collected_by_column``,
``prompt_column`` (when frames carry prompts of their own), ..."""

EPISODE_KINDS = ("demo", "autonomous", "intervention")
"""schemas.episodes.EPISODE_KINDS, repeated because that module imports pandera and polars (a test keeps
the two equal)."""
