"""Where things live on disk. One environment variable moves everything, so tests and CI stay isolated.

Every run belongs to a study. The default study keeps the historical layout ($RECAP_HOME/lance,
$RECAP_HOME/checkpoints); any other study gets its own store and checkpoints under
$RECAP_HOME/studies/<name>/, so its stages never read another study's episodes, labels or policies.
The metrics ledger is one Delta table for all studies, whose rows carry the study's name.
"""

from __future__ import annotations

import os
from pathlib import Path

from recap_core.names import require_name

DEFAULT_STUDY = "default"


def require_study_name(study: str) -> str:
    """Study names become folder names and ledger values: the names' rule (schemas/names.py)."""
    return require_name(study, "study")


def data_root() -> Path:
    """Root folder for tables, checkpoints and reports (``RECAP_HOME``, default ``./data``)."""
    return Path(os.environ.get("RECAP_HOME", "data")).resolve()


def in_study(root: str, study: str) -> str:
    """A store or checkpoint root as the study sees it: the root itself for the default study."""
    if require_study_name(study) == DEFAULT_STUDY:
        return root
    return f"{root.rstrip('/')}/studies/{study}"


def store_uri(study: str = DEFAULT_STUDY, root: str | None = None) -> str:
    """Folder (or object-store URI) holding the study's Lance episode tables: ``root`` (a ``--store``
    option, a resource's store_uri) or else $RECAP_STORE_URI or $RECAP_HOME/lance, in the study's
    namespace. The one way every command and the pipeline resolve a store and a study together."""
    return in_study(root or os.environ.get("RECAP_STORE_URI") or str(data_root() / "lance"), study)


def checkpoint_root(root: str | None = None) -> str:
    """The checkpoints' root folder before any study: ``root`` or $RECAP_HOME/checkpoints."""
    return root or str(data_root() / "checkpoints")


def checkpoint_dir(study: str = DEFAULT_STUDY, root: str | None = None) -> Path:
    """The study's checkpoint folder (see ``store_uri`` for how a root and a study combine)."""
    return Path(in_study(checkpoint_root(root), study))


def ledger_uri() -> str:
    """Delta table of evaluation metrics (one for every study; rows carry the study's name)."""
    return os.environ.get("RECAP_LEDGER_URI", str(data_root() / "ledger" / "metrics"))


OUTCOMES_TABLE = "evaluation_outcomes"  # schemas/outcomes.py: one row per evaluation episode


def outcomes_uri(ledger: str | Path) -> str:
    """The per-episode evaluation outcomes' Delta table: a sibling of the ledger's (``.../ledger/metrics``
    -> ``.../ledger/evaluation_outcomes``), so `recap query` sees it beside the ledger and one setting
    (RECAP_LEDGER_URI) places both, locally or on object storage."""
    text = str(ledger).rstrip("/")
    parent = text.rsplit("/", 1)[0] if "/" in text else "."
    return f"{parent}/{OUTCOMES_TABLE}"
