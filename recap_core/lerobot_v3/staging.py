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
RETIRED_MARKER = ".retired-"  # a replaced folder, hidden until it is removed


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


@contextmanager
def replacing_folder(out: Path) -> Iterator[Path]:
    """Yield a hidden path beside ``out`` for the caller to write a complete folder at (``write_dataset``
    creates it); on a clean exit it takes the place of ``out``, whose previous folder (if any) is then
    removed, and on any error it is removed and ``out`` stays as it was.

    For a dataset that is re-made rather than added to (a re-materialised asset): the new folder is
    complete before the old one moves, so ``out`` is the old dataset or the new one, and between the two
    renames (microseconds) absent, never half-written."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fresh = staging_path(out)
    try:
        yield fresh
        if not fresh.is_dir():
            raise FileNotFoundError(f"nothing was written at {fresh}")
        retired = None
        if out.exists():
            retired = out.parent / f".{out.name}{RETIRED_MARKER}{uuid.uuid4().hex[:8]}"
            out.rename(retired)
        try:
            fresh.rename(out)
        except BaseException:
            if retired is not None:
                retired.rename(out)
            raise
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)
