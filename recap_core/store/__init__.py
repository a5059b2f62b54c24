"""The episode store: validated, atomic, idempotent Lance tables for demos, rollouts and corrections."""

from recap_core.store.episode_store import EpisodeSelection, EpisodeStore, IngestResult
from recap_core.store.errors import EpisodeValidationError, Problem

__all__ = ["EpisodeSelection", "EpisodeStore", "EpisodeValidationError", "IngestResult", "Problem"]
