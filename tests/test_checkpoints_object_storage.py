"""Checkpoints on object storage (RECAP_CHECKPOINT_URI) against the suite's S3 server: a checkpoint
published on one machine is fetched, byte-identical, by another with an empty checkpoint root; a newer
version replaces it there; a failed training run or a failed upload publishes nothing."""

from __future__ import annotations

import pytest
import torch
from services import s3_server

from recap_core.locations import checkpoint_dir
from recap_core.loop.artifacts import (
    atomic_directory,
    iteration_path,
    next_iteration_to_train,
    read_lineage,
    require_checkpoint,
    write_lineage,
)
from recap_core.training.checkpoints import checkpoint_sha256, save_checkpoint

TASK = "reach-v3"


@pytest.fixture(scope="module")
def s3():
    with s3_server() as env, pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        patch.setenv("RECAP_CHECKPOINT_URI", "s3://recap/checkpoints")
        yield env


def _machine(monkeypatch, tmp_path, name: str):
    """Switch to another machine: its own RECAP_HOME, so its own (empty) local checkpoint root."""
    monkeypatch.setenv("RECAP_HOME", str(tmp_path / name))
    return checkpoint_dir()


def _publish(root, seed: int) -> str:
    target = iteration_path(root, "policy", TASK, 0)
    with atomic_directory(target) as version:
        torch.manual_seed(seed)
        save_checkpoint(
            torch.nn.Linear(4, 2), version, kind="policy", architecture={"hidden": 4}, normalisation={},
            method="recap", training={"seed": seed}, parent=None,
        )  # fmt: skip
        write_lineage(version, {"versions": {"episodes": seed}})
    return checkpoint_sha256(target)


def test_a_checkpoint_published_on_one_machine_is_fetched_by_another(s3, tmp_path, monkeypatch):
    first = _publish(_machine(monkeypatch, tmp_path, "trainer"), seed=1)

    other = _machine(monkeypatch, tmp_path, "collector")
    target = iteration_path(other, "policy", TASK, 0)
    assert not target.exists()
    assert next_iteration_to_train(other, TASK) == 1, "pi^0 exists, on object storage"
    require_checkpoint(target, "pi^0", "policy")
    assert checkpoint_sha256(target) == first
    assert read_lineage(target) == {"versions": {"episodes": 1}}

    # a newer version published by the trainer replaces the collector's copy on its next read
    second = _publish(_machine(monkeypatch, tmp_path, "trainer"), seed=2)
    assert second != first
    _machine(monkeypatch, tmp_path, "collector")
    old_version = target.resolve()
    require_checkpoint(target, "pi^0", "policy")
    assert checkpoint_sha256(target) == second
    assert not old_version.exists(), "the replaced version is removed locally"

    # a training run that fails publishes nothing, anywhere
    trainer = _machine(monkeypatch, tmp_path, "trainer")
    with (
        pytest.raises(RuntimeError, match="diverged"),
        atomic_directory(iteration_path(trainer, "policy", TASK, 0)),
    ):
        raise RuntimeError("training diverged")
    fresh = _machine(monkeypatch, tmp_path, "fresh")
    assert (
        checkpoint_sha256(require_checkpoint(iteration_path(fresh, "policy", TASK, 0), "pi^0", "policy"))
        == second
    )


def test_a_failed_upload_leaves_the_local_checkpoint_as_it_was(s3, tmp_path, monkeypatch):
    root = _machine(monkeypatch, tmp_path, "trainer")
    monkeypatch.setenv("RECAP_CHECKPOINT_URI", "s3://recap/uploads")
    published = _publish(root, seed=3)
    monkeypatch.setenv("RECAP_CHECKPOINT_URI", "s3://no-such-bucket/checkpoints")
    with pytest.raises(OSError):
        _publish(root, seed=4)
    target = iteration_path(root, "policy", TASK, 0)
    assert checkpoint_sha256(target) == published
    assert sorted(p.name for p in target.parent.iterdir() if p.name.startswith(".iteration-000.")) == [
        target.resolve().name
    ], "no half-published version left behind"
