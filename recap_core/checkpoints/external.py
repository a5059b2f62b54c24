"""Checkpoints an external trainer wrote: any files, named by one sha256 over all of them.

An external trainer (lerobot-train, openpi) writes its own format, so the checkpoint is whatever its
output directory holds, plus ``recap_external.json``: every file's sha256 and size, and the run's
record (command, exit code, the labelled dataset it read and that dataset's lineage, the base model).
Its content sha256 covers the file list and the record's behaviour part (which trainer, which command
and base model), so it is a version name like a flow policy's: a flipped byte, an added or a removed
file is refused on every read, naming the file. ``lineage.json`` (written by the stage after
training, as for every checkpoint) is outside the hash.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from recap_core.checkpoints.format import LINEAGE_FILE, file_sha256

EXTERNAL_MANIFEST = "recap_external.json"
EXTERNAL_KIND = "external-policy"
CONTENT_FIELDS = ("kind", "name", "command", "pretrained", "files")  # what the content sha256 covers
_OUTSIDE = {EXTERNAL_MANIFEST, LINEAGE_FILE}


def is_external(path: str | Path) -> bool:
    return (Path(path) / EXTERNAL_MANIFEST).is_file()


def listed_files(directory: Path) -> dict[str, dict[str, Any]]:
    """relative path -> {sha256, bytes} of every file under ``directory`` but the manifest and lineage."""
    files = {}
    for file in sorted(p for p in directory.rglob("*") if p.is_file()):
        relative = file.relative_to(directory).as_posix()
        if relative not in _OUTSIDE:
            files[relative] = {"sha256": file_sha256(file), "bytes": file.stat().st_size}
    return files


def external_content_sha256(manifest: dict[str, Any]) -> str:
    covered = {key: manifest.get(key) for key in CONTENT_FIELDS}
    return hashlib.sha256(json.dumps(covered, sort_keys=True).encode()).hexdigest()


def write_external_manifest(directory: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Name what an external trainer wrote into ``directory``: list its files, hash them and write the
    manifest. ``record`` holds the run's facts (name, command, pretrained, exit code, dataset, ...)."""
    files = listed_files(directory)
    if not files:
        raise ValueError(f"the external trainer wrote nothing into {directory}")
    manifest = {**record, "kind": EXTERNAL_KIND, "files": files}
    manifest["content_sha256"] = external_content_sha256(manifest)
    (directory / EXTERNAL_MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def read_external_manifest(path: str | Path) -> dict[str, Any]:
    file = Path(path) / EXTERNAL_MANIFEST
    try:
        return json.loads(file.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{file}: not valid JSON ({error})") from None


def verify_external(path: str | Path) -> str:
    """The verified content sha256 of the external checkpoint at ``path``, or a refusal naming the
    file that differs from its manifest (imported lazily by verification.py's error type)."""
    from recap_core.checkpoints.verification import CheckpointIntegrityError

    path = Path(path)
    manifest = read_external_manifest(path)
    recorded = manifest.get("files") or {}
    actual = listed_files(path)
    for name in sorted(set(recorded) | set(actual)):
        if name not in actual:
            raise CheckpointIntegrityError(f"{path / name}: listed in {EXTERNAL_MANIFEST} but missing")
        if name not in recorded:
            raise CheckpointIntegrityError(f"{path / name}: not listed in {EXTERNAL_MANIFEST} (added later)")
        if actual[name]["sha256"] != recorded[name].get("sha256"):
            raise CheckpointIntegrityError(
                f"{path / name}: sha256 {actual[name]['sha256'][:12]} does not match the "
                f"{str(recorded[name].get('sha256'))[:12]} in {EXTERNAL_MANIFEST}; modified or corrupted"
            )
    content = external_content_sha256(manifest)
    if content != manifest.get("content_sha256"):
        raise CheckpointIntegrityError(
            f"{path / EXTERNAL_MANIFEST}: content sha256 {content[:12]} does not match the "
            f"{str(manifest.get('content_sha256'))[:12]} it records; the manifest was edited"
        )
    return content
