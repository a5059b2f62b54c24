"""Table schemas: Arrow (what Lance stores) and pandera/polars (what a batch must satisfy before a write)."""

from schemas.episodes import EPISODES_ARROW_SCHEMA, episodes_validation_schema
from schemas.steps import IMAGE_COLUMN_PREFIX, steps_arrow_schema, steps_validation_schema

__all__ = [
    "EPISODES_ARROW_SCHEMA",
    "IMAGE_COLUMN_PREFIX",
    "episodes_validation_schema",
    "steps_arrow_schema",
    "steps_validation_schema",
]
