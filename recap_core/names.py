"""Names that reach paths and partition keys, checked by one rule (schemas/names.py) where they enter.

A task name comes from a preset, the command line, a partition added in the UI, a fleet dataset's
recap_import.json, or a LeRobot dataset's task text. Names given as names are refused unless they follow
the rule; a task text (a natural-language instruction, "Pick up the red cube.") is turned into a name that
does: a slug of the text plus a short hash of it, so two texts never share a name and the same text always
gets the same one. The text itself stays queryable as the episodes' ``prompt``.
"""

from __future__ import annotations

import hashlib
import re

from schemas.names import NAME_RULE, is_valid_name

_SLUG_LENGTH = 48


def require_name(name: object, what: str = "task") -> str:
    """``name`` if it follows the rule, else a ValueError naming it, what it is and the rule."""
    if not is_valid_name(name):
        raise ValueError(f"{what} name {name!r} must be {NAME_RULE}")
    return name  # type: ignore[return-value]


def require_task_name(name: object) -> str:
    return require_name(name, "task")


def task_name_from_text(text: str) -> str:
    """A valid task name for a task text: the text itself when it already is one, else its slug plus the
    first 8 hex digits of its sha256 ("pick-up-the-red-cube-3fa2c1d0")."""
    if is_valid_name(text):
        return text
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:_SLUG_LENGTH].strip("-")
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{slug}-{digest}" if slug else f"task-{digest}"
