"""Removing checkpoint versions nothing names, and only on request.

Publishing never deletes a version (layout.py): a re-materialised iteration adds one, and the rollouts,
labels and ledger rows made with the old one keep naming it. Over many re-runs that costs disk, so a
collection removes the versions that are neither current nor named by any reference the caller
gathered (recap_core/loop/references.py gathers those of a study's store and ledger), nor by a kept
version's lineage (its parent, its PPO reference), transitively.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from recap_core.checkpoints.format import read_checkpoint_config
from recap_core.checkpoints.layout import CheckpointLayout, read_lineage, version_sha256


@dataclass
class GarbageReport:
    """What a collection found: every stored version, the ones kept and why, the ones removable."""

    versions: int = 0
    current: list[str] = field(default_factory=list)
    referenced: list[str] = field(default_factory=list)
    removable: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "versions": self.versions,
            "current": len(self.current),
            "referenced": len(self.referenced),
            "removable": self.removable,
            "removed": self.removed,
        }


def collect_garbage(layout: CheckpointLayout, references: set[str], delete: bool = False) -> GarbageReport:
    """Find (and with ``delete``, remove) the versions of ``layout`` that nothing names.

    ``references``: checkpoint names (full sha256 or a prefix, as a rollout's collected_by records it)
    that stored rows name.
    """
    report = GarbageReport()
    names: dict[Path, str] = {}
    current: set[Path] = set()
    for slot in layout.slots():
        current.add(slot.resolve())
        for version in layout.versions(slot):
            names[version] = version_sha256(version)
    report.versions = len(names)
    keep = {v for v in names if v in current}
    keep |= {v for v, sha in names.items() if any(sha.startswith(r) for r in references if r)}
    named_by_kept = _lineage_names(keep)
    while True:  # a kept version keeps what it was finetuned from or trained against
        more = {v for v, sha in names.items() if v not in keep and sha in named_by_kept}
        if not more:
            break
        keep |= more
        named_by_kept |= _lineage_names(more)
    report.current = sorted(str(v) for v in keep if v in current)
    report.referenced = sorted(str(v) for v in keep if v not in current)
    report.removable = sorted(str(v) for v in names if v not in keep)
    if delete:
        for path in report.removable:
            shutil.rmtree(path)
            report.removed.append(path)
    return report


def _lineage_names(versions: set[Path]) -> set[str]:
    out: set[str] = set()
    for version in versions:
        parent = read_checkpoint_config(version).get("parent") or {}
        if parent.get("sha256"):
            out.add(parent["sha256"])
        try:
            reference = read_lineage(version).get("ppo_reference_sha256")
        except FileNotFoundError:
            reference = None
        if reference:
            out.add(reference)
    return out
