"""Where each stage's checkpoint lives, and how it gets there without ever being half-written.

Paths are a pure function of (kind, task, iteration, method) under one root, so a downstream stage finds
its input without a registry, and re-materialising a stage replaces exactly its own checkpoint. Each
checkpoint directory also holds ``lineage.json``: the table versions and rows it was trained on.

A ``CheckpointLayout`` is one study's checkpoints: its root and, when configured, the object-storage
mirror of that root. Every read of a stage's checkpoint goes through it, so a checkpoint published on
another machine is fetched before it is read.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recap_core.checkpoints.external import is_external
from recap_core.checkpoints.format import CONFIG_FILE, LINEAGE_FILE
from recap_core.checkpoints.mirror import CHECKPOINT_URI_VARIABLE, CheckpointMirror, switch_to
from recap_core.checkpoints.verification import checkpoint_sha256
from recap_core.extraction import Method
from recap_core.locations import in_study
from recap_core.names import require_name, require_task_name

VALUE = "value"
POLICY = "policy"


@dataclass(frozen=True)
class CheckpointLayout:
    """One study's checkpoint folder (``root``) and its optional object-storage copy (``mirror``)."""

    root: Path
    mirror: CheckpointMirror | None = None

    @classmethod
    def at(cls, root: str | Path, study: str, mirror_uri: str | None = None) -> CheckpointLayout:
        """The layout of ``study`` under ``root`` (its studies/<name> folder for a named study), mirrored
        to ``mirror_uri`` (default: $RECAP_CHECKPOINT_URI) under the same study prefix."""
        folder = Path(in_study(str(root), study))
        uri = mirror_uri if mirror_uri is not None else os.environ.get(CHECKPOINT_URI_VARIABLE)
        return cls(folder, CheckpointMirror(folder, in_study(uri, study)) if uri else None)

    # ------------------------------------------------------------------ paths
    def pretrained(self, kind: str) -> Path:
        """V_pre or pi_pre: ``kind`` is "value" or "policy"."""
        return self.root / kind / "pretrained"

    def iteration(self, kind: str, task: str, iteration: int, method: str = Method.RECAP.value) -> Path:
        """V^k or pi^k of one task (baselines get their own method folder). The task and method are
        names by the names' rule, so the path stays inside the root whatever a dataset called its task."""
        require_task_name(task)
        require_name(method, "method")
        return self.root / kind / method / task / f"iteration-{int(iteration):03d}"

    # ------------------------------------------------------------------ reading
    def fetch(self, path: Path) -> None:
        """Bring the mirrored copy's current version of ``path`` here (no-op when unmirrored)."""
        if self.mirror is not None:
            self.mirror.fetch(path)

    def exists(self, path: Path) -> bool:
        self.fetch(path)
        return (path / CONFIG_FILE).is_file() or is_external(path)

    def require(self, path: Path, what: str, produced_by: str) -> Path:
        """``path``, after failing with the stage to run when the checkpoint is missing (here and on
        object storage)."""
        if not self.exists(path):
            raise FileNotFoundError(f"{what} checkpoint missing at {path}: materialise {produced_by} first")
        return path

    def read_lineage(self, path: Path) -> dict[str, Any]:
        self.fetch(path)
        return read_lineage(path)

    def value_pretrained(self) -> Path:
        return self.require(self.pretrained(VALUE), "V_pre", "value_function_pretrained")

    def policy_pretrained(self) -> Path:
        return self.require(self.pretrained(POLICY), "pi_pre", "policy_pretrained")

    def value_of(self, task: str, iteration: int) -> Path:
        """V^k of ``task``, required."""
        return self.require(self.iteration(VALUE, task, iteration), "V^k", "value_function")

    def policy_of(self, task: str, iteration: int) -> Path:
        """pi^k of ``task``, required."""
        return self.require(self.iteration(POLICY, task, iteration), "pi^k", "policy")

    def data_collecting_policy(self, task: str, iteration: int) -> Path:
        """The policy that collects iteration k's rollouts: pi^{k-1}. For k = 0 (the operator's demos, no
        policy of ours) pi_pre, the model of those demos; PPO takes its trust region against either."""
        if iteration == 0:
            return self.policy_pretrained()
        previous = self.iteration(POLICY, task, iteration - 1)
        return self.require(previous, f"pi^{iteration - 1}", "policy")

    def next_iteration_to_train(self, task: str) -> int:
        """The first iteration of ``task`` whose policy pi^k has no checkpoint yet."""
        iteration = 0
        while self.exists(self.iteration(POLICY, task, iteration)):
            iteration += 1
        return iteration

    def require_iteration_in_order(self, task: str, iteration: int) -> None:
        """Iteration k collects rollouts of pi^{k-1}: refuse it, naming the next runnable one, until that
        policy exists (a skipped iteration would otherwise fail half-way, after its partition was added)."""
        if iteration < 0:
            raise ValueError(f"iteration must be >= 0, got {iteration}")
        if iteration == 0 or self.exists(self.iteration(POLICY, task, iteration - 1)):
            return
        raise ValueError(
            f"iteration {iteration} of {task!r} is out of order: it collects rollouts of "
            f"pi^{iteration - 1}, which has not been trained; the next iteration of {task!r} is "
            f"{self.next_iteration_to_train(task)}"
        )

    # ------------------------------------------------------------------ writing
    @contextmanager
    def publishing(self, target: Path) -> Iterator[Path]:
        """Yield a fresh directory that becomes the current version of ``target`` only if the block
        succeeds.

        Every version is immutable and named by its content sha256 (``.<slot>.<sha[:12]>`` beside the
        slot): a re-run that trains the same content finds its version already there and publishing is
        a no-op; a different content adds a version. ``target`` is a symlink to the current version,
        switched with one atomic rename, so a failed training run leaves the previous checkpoint in
        place and a reader (another run) always sees the old or the new checkpoint, never a gap or a
        mix. Earlier versions stay: stored episodes, derived rows and ledger rows name them (``recap
        checkpoints gc`` removes the ones nothing names, on request). Each switch is appended to the
        slot's history. With a mirror, the version is published to object storage first (mirror.py): a
        failed upload leaves both copies as they were.
        """
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = target.parent / f".{target.name}.new-{uuid.uuid4().hex[:8]}"
        created = False
        try:
            yield scratch
            sha = checkpoint_sha256(scratch)
            version = target.parent / f".{target.name}.{sha[:VERSION_DIGITS]}"
            try:
                scratch.rename(version)
                created = True
            except OSError:  # this content is already published (same inputs and seed): keep that one
                if not ((version / CONFIG_FILE).is_file() or is_external(version)):
                    raise
                shutil.rmtree(scratch, ignore_errors=True)
            if self.mirror is not None:
                self.mirror.publish(target, version)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            if created:
                shutil.rmtree(version, ignore_errors=True)
            raise
        previous = target.resolve().name if target.is_symlink() else None
        switch_to(target, version)
        if previous != version.name:
            record_history(target, version, sha, previous)

    # ------------------------------------------------------------------ versions
    def versions(self, target: Path) -> list[Path]:
        """Every stored version of the slot ``target`` (current or not), oldest first."""
        prefix = f".{target.name}."
        found = [
            p for p in target.parent.glob(f"{prefix}*")
            if p.is_dir() and not p.is_symlink() and _is_version_name(p.name[len(prefix):])
        ]  # fmt: skip
        return sorted(found, key=lambda p: p.stat().st_mtime)

    def slots(self) -> list[Path]:
        """Every checkpoint slot under the root (the links a stage reads: pretrained, iteration-NNN)."""
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.rglob("*") if p.is_symlink() and not p.name.startswith("."))

    def find(self, sha: str) -> Path | None:
        """The stored version named ``sha`` (or a prefix of it, as a rollout's collected_by gives it),
        whichever slot holds it; None when no version of this layout has that name."""
        for slot in self.slots():
            for version in self.versions(slot):
                if version_sha256(version).startswith(sha):
                    return version
        return None


VERSION_DIGITS = 12
HISTORY_SUFFIX = ".history.jsonl"


def _is_version_name(suffix: str) -> bool:
    """``<sha12>`` (content-addressed) or a legacy ``<uuid12>``; not scratch, download or link names."""
    return len(suffix) == VERSION_DIGITS and all(c in "0123456789abcdef" for c in suffix)


def version_sha256(version: Path) -> str:
    """The name of a stored version; legacy versions keep the name lineage gave them then."""
    return checkpoint_sha256(version, allow_legacy=True)


def record_history(target: Path, version: Path, sha: str, previous: str | None) -> None:
    """Append one switch of ``target``'s current pointer to the slot's history (one JSON line each)."""
    line = {
        "version": version.name,
        "sha256": sha,
        "previous": previous,
        "published_at": datetime.now(UTC).isoformat(),
    }
    with (target.parent / f".{target.name}{HISTORY_SUFFIX}").open("a") as history:
        history.write(json.dumps(line) + "\n")


def read_history(target: Path) -> list[dict[str, Any]]:
    """Every switch of ``target``'s current pointer, oldest first."""
    file = target.parent / f".{target.name}{HISTORY_SUFFIX}"
    if not file.is_file():
        return []
    return [json.loads(line) for line in file.read_text().splitlines() if line.strip()]


def write_lineage(directory: Path, lineage: dict[str, Any]) -> None:
    (directory / LINEAGE_FILE).write_text(json.dumps(lineage, indent=2, sort_keys=True, default=str))


def read_lineage(directory: Path) -> dict[str, Any]:
    """The lineage of a checkpoint directory here (``CheckpointLayout.read_lineage`` fetches it first)."""
    file = directory / LINEAGE_FILE
    if not file.is_file():
        raise FileNotFoundError(
            f"{directory} has no {LINEAGE_FILE}: materialise the stage that writes it first"
        )
    return json.loads(file.read_text())
