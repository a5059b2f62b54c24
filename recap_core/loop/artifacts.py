"""Where each stage's checkpoint lives, and how it gets there without ever being half-written.

Paths are a pure function of (kind, task, iteration, method), so a downstream stage finds its input
without a registry, and re-materialising a stage replaces exactly its own checkpoint. Each checkpoint
directory also holds ``lineage.json``: the table versions and rows it was trained on.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from recap_core.checkpoint_mirror import fetch, publish, switch_to
from recap_core.methods import Method
from recap_core.training.checkpoints import LINEAGE_FILE


def pretrained_path(root: Path, kind: str) -> Path:
    """V_pre or pi_pre: ``kind`` is "value" or "policy"."""
    return root / kind / "pretrained"


def iteration_path(
    root: Path, kind: str, task: str, iteration: int, method: str = Method.RECAP.value
) -> Path:
    """V^k or pi^k of one task (baselines get their own method folder)."""
    return root / kind / method / task / f"iteration-{iteration:03d}"


@contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield a fresh directory that becomes ``target`` only if the block succeeds.

    ``target`` is a symlink to the current version's directory and is switched with one atomic rename,
    so a failed training run leaves the previous checkpoint in place, and a reader (another run) always
    sees either the old or the new checkpoint, never a gap or a mix of the two. With
    RECAP_CHECKPOINT_URI set, the version is also published to object storage (checkpoint_mirror.py).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    version = target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}"
    try:
        yield version
    except BaseException:
        shutil.rmtree(version, ignore_errors=True)
        raise
    try:
        publish(target, version)  # object storage first: a failed upload leaves both copies as they were
    except BaseException:
        shutil.rmtree(version, ignore_errors=True)
        raise
    switch_to(target, version)


def write_lineage(directory: Path, lineage: dict[str, Any]) -> None:
    (directory / LINEAGE_FILE).write_text(json.dumps(lineage, indent=2, sort_keys=True, default=str))


def read_lineage(directory: Path) -> dict[str, Any]:
    fetch(directory)
    file = directory / LINEAGE_FILE
    if not file.is_file():
        raise FileNotFoundError(
            f"{directory} has no {LINEAGE_FILE}: materialise the stage that writes it first"
        )
    return json.loads(file.read_text())


def require_checkpoint(path: Path, what: str, produced_by: str) -> Path:
    """Fail with the stage to run when an upstream checkpoint is missing (here and on object storage)."""
    fetch(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{what} checkpoint missing at {path}: materialise {produced_by} first")
    return path


def checkpoint_exists(path: Path) -> bool:
    fetch(path)
    return (path / "config.json").is_file()


def data_collecting_policy(root: Path, task: str, iteration: int) -> Path:
    """The policy that collects iteration k's rollouts: pi^{k-1}. For k = 0 (the operator's demos, no
    policy of ours) pi_pre, the model of those demos; PPO takes its trust region against either."""
    if iteration == 0:
        return require_checkpoint(pretrained_path(root, "policy"), "pi_pre", "policy_pretrained")
    return require_checkpoint(
        iteration_path(root, "policy", task, iteration - 1), f"pi^{iteration - 1}", "policy"
    )


def next_iteration_to_train(root: Path, task: str) -> int:
    """The first iteration of ``task`` whose policy pi^k has no checkpoint yet."""
    iteration = 0
    while checkpoint_exists(iteration_path(root, "policy", task, iteration)):
        iteration += 1
    return iteration


def require_iteration_in_order(root: Path, task: str, iteration: int) -> None:
    """Iteration k collects rollouts of pi^{k-1}: refuse it, naming the next runnable one, until that
    policy exists (a skipped iteration would otherwise fail half-way, after its partition was added)."""
    if iteration < 0:
        raise ValueError(f"iteration must be >= 0, got {iteration}")
    if iteration == 0 or checkpoint_exists(iteration_path(root, "policy", task, iteration - 1)):
        return
    raise ValueError(
        f"iteration {iteration} of {task!r} is out of order: it collects rollouts of pi^{iteration - 1}, "
        f"which has not been trained; the next iteration of {task!r} is {next_iteration_to_train(root, task)}"
    )
