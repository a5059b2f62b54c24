"""Checkpoints on object storage (RECAP_CHECKPOINT_URI) against the suite's S3 server: a checkpoint
published on one machine is fetched, byte-identical, by another with an empty checkpoint root; a newer
version replaces it there; a failed training run or a failed upload publishes nothing."""

from __future__ import annotations

import pytest
import torch

from recap_core.checkpoints.layout import CheckpointLayout, write_lineage
from recap_core.checkpoints.serialise import save_checkpoint
from recap_core.checkpoints.verification import checkpoint_sha256
from recap_core.locations import DEFAULT_STUDY, checkpoint_root

TASK = "reach-v3"


@pytest.fixture(scope="module")
def s3_checkpoints(s3):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECAP_CHECKPOINT_URI", "s3://recap/checkpoints")
        yield s3


def _machine(monkeypatch, tmp_path, name: str):
    """Switch to another machine: its own RECAP_HOME, so its own (empty) local checkpoint root."""
    monkeypatch.setenv("RECAP_HOME", str(tmp_path / name))
    return CheckpointLayout.at(checkpoint_root(), DEFAULT_STUDY)


def _publish(layout: CheckpointLayout, seed: int) -> str:
    target = layout.iteration("policy", TASK, 0)
    with layout.publishing(target) as version:
        torch.manual_seed(seed)
        save_checkpoint(
            torch.nn.Linear(4, 2), version, kind="policy", architecture={"hidden": 4}, normalisation={},
            method="recap", training={"seed": seed}, parent=None,
        )  # fmt: skip
        write_lineage(version, {"versions": {"episodes": seed}})
    return checkpoint_sha256(target)


def test_a_checkpoint_published_on_one_machine_is_fetched_by_another(s3_checkpoints, tmp_path, monkeypatch):
    first = _publish(_machine(monkeypatch, tmp_path, "trainer"), seed=1)

    other = _machine(monkeypatch, tmp_path, "collector")
    target = other.iteration("policy", TASK, 0)
    assert not target.exists()
    assert other.next_iteration_to_train(TASK) == 1, "pi^0 exists, on object storage"
    other.require(target, "pi^0", "policy")
    assert checkpoint_sha256(target) == first
    assert other.read_lineage(target) == {"versions": {"episodes": 1}}

    # a newer version published by the trainer replaces the collector's copy on its next read
    second = _publish(_machine(monkeypatch, tmp_path, "trainer"), seed=2)
    assert second != first
    _machine(monkeypatch, tmp_path, "collector")
    old_version = target.resolve()
    other.require(target, "pi^0", "policy")
    assert checkpoint_sha256(target) == second
    assert old_version.exists(), "the replaced version stays: rows collected with it still name it"

    # a training run that fails publishes nothing, anywhere
    trainer = _machine(monkeypatch, tmp_path, "trainer")
    with (
        pytest.raises(RuntimeError, match="diverged"),
        trainer.publishing(trainer.iteration("policy", TASK, 0)),
    ):
        raise RuntimeError("training diverged")
    fresh = _machine(monkeypatch, tmp_path, "fresh")
    assert checkpoint_sha256(fresh.policy_of(TASK, 0)) == second


def test_the_mirror_follows_a_checkpoint_root_outside_the_data_root(s3_checkpoints, tmp_path, monkeypatch):
    """A resource whose checkpoint_root points elsewhere than $RECAP_HOME/checkpoints used to be neither
    uploaded nor fetched, silently: the mirror took its paths relative to the default data root. It now
    mirrors the layout's own root, and a named study under its own prefix."""
    monkeypatch.setenv("RECAP_HOME", str(tmp_path / "home"))
    trainer = CheckpointLayout.at(tmp_path / "scratch-disk" / "ckpt", "study-a", "s3://recap/elsewhere")
    published = _publish(trainer, seed=5)
    collector = CheckpointLayout.at(tmp_path / "other-disk", "study-a", "s3://recap/elsewhere")
    assert checkpoint_sha256(collector.policy_of(TASK, 0)) == published
    assert collector.root == tmp_path / "other-disk" / "studies" / "study-a"
    another_study = CheckpointLayout.at(tmp_path / "third-disk", "study-b", "s3://recap/elsewhere")
    assert not another_study.exists(another_study.iteration("policy", TASK, 0))
    with pytest.raises(ValueError, match="outside the mirrored checkpoint root"):
        trainer.fetch(tmp_path / "somewhere" / "else")


def test_a_failed_upload_leaves_the_local_checkpoint_as_it_was(s3_checkpoints, tmp_path, monkeypatch):
    monkeypatch.setenv("RECAP_HOME", str(tmp_path / "trainer"))
    root = checkpoint_root()
    published = _publish(CheckpointLayout.at(root, DEFAULT_STUDY, "s3://recap/uploads"), seed=3)
    layout = CheckpointLayout.at(root, DEFAULT_STUDY, "s3://no-such-bucket/checkpoints")
    with pytest.raises(OSError):
        _publish(layout, seed=4)
    target = layout.iteration("policy", TASK, 0)
    assert checkpoint_sha256(target) == published
    assert [p.name for p in layout.versions(target)] == [target.resolve().name], "no half-published version"
    assert sorted(p.name for p in target.parent.iterdir()) == sorted(
        [target.name, target.resolve().name, ".iteration-000.history.jsonl"]
    ), "nothing else left behind (scratch folders, links)"
