"""A dataset folder appears complete or not at all: written under a hidden sibling, renamed at the end.

Readers (the fleet's drop folder, `recap ingest lerobot`) skip dot-prefixed folders, and a rename within
one file system is atomic, so nobody ever reads a half-written dataset; a failure removes the sibling.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PARTIAL_MARKER = ".partial-"


def staging_path(out: Path) -> Path:
    """The hidden sibling ``out`` is written under: ``.<name>.partial-<8 hex>``."""
    return out.parent / f".{out.name}{PARTIAL_MARKER}{uuid.uuid4().hex[:8]}"


@contextmanager
def staged_folder(out: Path) -> Iterator[Path]:
    """Yield an empty hidden folder beside ``out``; on a clean exit it becomes ``out``, on any error it is
    removed. ``out`` must not exist (a dataset is never written over another)."""
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} already exists: write into a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_path(out)
    staging.mkdir()
    try:
        yield staging
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
