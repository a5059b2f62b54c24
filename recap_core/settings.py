"""Where things live on disk. One environment variable moves everything, so tests and CI stay isolated."""

from __future__ import annotations

import os
from pathlib import Path


def data_root() -> Path:
    """Root folder for tables, checkpoints and reports (``RECAP_HOME``, default ``./data``)."""
    return Path(os.environ.get("RECAP_HOME", "data")).resolve()


def store_uri() -> str:
    """Folder (or object-store URI) holding the Lance episode tables."""
    return os.environ.get("RECAP_STORE_URI", str(data_root() / "lance"))


def checkpoint_dir() -> Path:
    return data_root() / "checkpoints"


def ledger_uri() -> str:
    """Delta table of evaluation metrics."""
    return os.environ.get("RECAP_LEDGER_URI", str(data_root() / "ledger" / "metrics"))
