"""Checkpoints on object storage: with ``RECAP_CHECKPOINT_URI=s3://bucket/prefix`` every published
checkpoint is uploaded there, and a machine that lacks it (a pod on another node, a new server) fetches
it from there before reading it.

The local checkpoint root stays the working copy: training writes local files and loaders memory-map
local safetensors. The object store is the shared, durable copy. Publishing uploads the version's files
under a fresh prefix and then writes one small pointer object (``CURRENT.json``); a single PUT is
atomic on S3, so a reader on any machine sees the old or the new checkpoint, never a mix, and a failed
upload leaves the previous pointer in place.

A mirror belongs to one checkpoint layout: it mirrors paths relative to that layout's root, wherever the
root is (a resource's own checkpoint root included). A path outside the root is refused, not silently
left unmirrored.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs

from recap_core.object_storage import arrow_filesystem

POINTER = "CURRENT.json"
VERSIONS = "versions"
CHECKPOINT_URI_VARIABLE = "RECAP_CHECKPOINT_URI"


@dataclass(frozen=True)
class CheckpointMirror:
    """The object-store copy of the checkpoint folder ``root``, at ``uri``."""

    root: Path
    uri: str

    def _remote(self, target: Path) -> tuple[pyarrow.fs.FileSystem, str]:
        try:
            relative = Path(os.path.abspath(target)).relative_to(Path(os.path.abspath(self.root)))
        except ValueError:
            raise ValueError(
                f"checkpoint {target} is outside the mirrored checkpoint root {self.root}"
            ) from None
        filesystem, base = arrow_filesystem(self.uri)
        return filesystem, f"{base}/{relative.as_posix()}"

    def publish(self, target: Path, version_dir: Path) -> None:
        """Upload a finished version of ``target`` and point the remote copy at it."""
        filesystem, prefix = self._remote(target)
        name = version_name(version_dir)
        pyarrow.fs.copy_files(
            str(version_dir),
            f"{prefix}/{VERSIONS}/{name}",
            source_filesystem=pyarrow.fs.LocalFileSystem(),
            destination_filesystem=filesystem,
        )
        files = sorted(str(f.relative_to(version_dir)) for f in version_dir.rglob("*") if f.is_file())
        with filesystem.open_output_stream(f"{prefix}/{POINTER}") as out:
            out.write(json.dumps({"version": name, "files": files}).encode())

    def fetch(self, target: Path) -> None:
        """Make the local ``target`` the remote copy's current version, downloading it if needed.

        A no-op when nothing was published remotely (the local copy, if any, stands).
        """
        filesystem, prefix = self._remote(target)
        try:
            with filesystem.open_input_stream(f"{prefix}/{POINTER}") as pointer_file:
                pointer = json.loads(pointer_file.read())
        except FileNotFoundError:
            return
        name = pointer["version"]
        if target.is_symlink() and version_name(target.resolve()) == name:
            return
        version_dir = target.parent / f".{name}"
        if not version_dir.is_dir():
            target.parent.mkdir(parents=True, exist_ok=True)
            download = target.parent / f".{name}.download-{uuid.uuid4().hex[:8]}"
            download.mkdir()
            pyarrow.fs.copy_files(
                f"{prefix}/{VERSIONS}/{name}",
                str(download),
                source_filesystem=filesystem,
                destination_filesystem=pyarrow.fs.LocalFileSystem(),
            )
            missing = [f for f in pointer["files"] if not (download / f).is_file()]
            if missing:
                shutil.rmtree(download, ignore_errors=True)
                raise FileNotFoundError(f"checkpoint {prefix}/{VERSIONS}/{name} lacks {missing}")
            try:
                download.rename(version_dir)
            except OSError:  # another process on this machine fetched the same version first
                shutil.rmtree(download, ignore_errors=True)
        switch_to(target, version_dir)


def version_name(version_dir: Path) -> str:
    """A local version folder ``.iteration-000.<sha12>`` is published as ``iteration-000.<sha12>``."""
    return version_dir.name.lstrip(".")


def switch_to(target: Path, version_dir: Path) -> None:
    """Point the symlink ``target`` at ``version_dir`` with one atomic rename. The previous version stays
    where it is: lineage may name it (a plain directory of the oldest layout is kept beside, retired)."""
    if target.exists() and not target.is_symlink():
        target.rename(target.parent / f".{target.name}.retired-{uuid.uuid4().hex[:8]}")
    link = target.parent / f".{target.name}.link-{uuid.uuid4().hex[:8]}"
    os.symlink(version_dir.name, link)
    os.replace(link, target)
