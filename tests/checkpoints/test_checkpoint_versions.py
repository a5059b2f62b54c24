"""Checkpoint versions: reproducible bytes and names, immutable content-addressed versions, a current
pointer with history, and a garbage collection that removes only what nothing names."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from paths import TESTS

from recap_core.checkpoints.garbage import collect_garbage
from recap_core.checkpoints.layout import CheckpointLayout, read_history, write_lineage
from recap_core.checkpoints.serialise import save_checkpoint
from recap_core.checkpoints.verification import checkpoint_sha256

TASK = "reach-v3"

# Trains V and pi on the same synthetic steps with the same seeds, in a process of its own, and prints
# each checkpoint's name and the sha256 of its files' bytes.
TRAIN_TWICE = """
import hashlib, json, sys
import numpy as np, torch
from steps_helpers import ToyEpisode, make_steps
from recap_core.checkpoints.format import file_sha256
from recap_core.models import FlowPolicyConfig, ValueNetConfig
from recap_core.training import PolicyTrainConfig, ValueTrainConfig, train_policy, train_value_function
torch.set_num_threads(1)
rng = np.random.default_rng(0)
steps = make_steps([ToyEpisode("reach-v3", i % 2 == 0, rng.normal(size=(12, 4)), rng.normal(size=(12, 2)))
                    for i in range(10)])
out = sys.argv[1]
vf, _ = train_value_function(steps, ValueTrainConfig(epochs=2, architecture=ValueNetConfig(hidden=16)),
                             out_dir=out + "/value")
pi, _ = train_policy(steps, np.ones(len(steps), bool),
                     PolicyTrainConfig(epochs=2, architecture=FlowPolicyConfig(hidden=16, horizon=3)),
                     out_dir=out + "/policy")
print(json.dumps({kind: [ref.sha256, file_sha256(__import__("pathlib").Path(ref.path) / "model.safetensors")]
                  for kind, ref in (("value", vf.checkpoint), ("policy", pi.checkpoint))}))
"""


def test_two_trainings_with_the_same_inputs_and_seed_give_the_same_bytes_and_names(tmp_path):
    """In separate processes, as two runs of the pipeline are. The weights file used to differ between
    runs (safetensors wrote its two metadata entries in either order), and config.json's creation time
    and training times made every checkpoint's name new, so a re-run orphaned what lineage named."""
    env = {**os.environ, "PYTHONPATH": str(TESTS), "OMP_NUM_THREADS": "1"}
    runs = []
    for attempt in range(2):
        out = subprocess.run(
            [sys.executable, "-c", TRAIN_TWICE, str(tmp_path / f"run-{attempt}")],
            env=env, capture_output=True, text=True, timeout=300, check=True,
        )  # fmt: skip
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert runs[0] == runs[1]
    assert runs[0]["value"][0] != runs[0]["policy"][0]


def _write(layout: CheckpointLayout, seed: int, parent: tuple[str, str] | None = None, target=None) -> str:
    """Publish a small checkpoint of seed ``seed`` as pi^0 (or ``target``; ``parent``: (path, sha256))."""
    from recap_core.checkpoints.format import CheckpointRef

    target = target or layout.iteration("policy", TASK, 0)
    with layout.publishing(target) as version:
        torch.manual_seed(seed)
        save_checkpoint(
            torch.nn.Linear(3, 2), version, kind="policy", architecture={"hidden": 3}, normalisation={},
            method="recap", training={"seed": seed}, parent=CheckpointRef(*parent) if parent else None,
        )  # fmt: skip
        write_lineage(version, {"versions": {"episodes": seed}})
    return checkpoint_sha256(target)


def test_publishing_adds_immutable_versions_and_the_same_content_is_a_no_op(tmp_path):
    layout = CheckpointLayout(tmp_path / "checkpoints")
    target = layout.iteration("policy", TASK, 0)
    first = _write(layout, seed=1)
    assert target.resolve().name == f".iteration-000.{first[:12]}"
    assert _write(layout, seed=1) == first, "the same content again"
    assert [v.name for v in layout.versions(target)] == [target.resolve().name]
    second = _write(layout, seed=2)
    assert second != first
    names = [v.name for v in layout.versions(target)]
    assert names == [f".iteration-000.{first[:12]}", f".iteration-000.{second[:12]}"]
    assert layout.find(first[:12]) == target.parent / names[0], "the old version is still there"
    history = read_history(target)
    assert [(h["sha256"], h["previous"]) for h in history] == [(first, None), (second, names[0])]
    assert _write(layout, seed=1) == first, "back to the first: a switch, not a new version"
    assert len(layout.versions(target)) == 2 and len(read_history(target)) == 3
    with pytest.raises(RuntimeError), layout.publishing(target):
        raise RuntimeError("training diverged")
    assert checkpoint_sha256(target) == first and len(layout.versions(target)) == 2


def test_garbage_collection_removes_only_what_nothing_names(tmp_path):
    """Kept: every slot's current version, every version a stored row names, and what a kept version
    was finetuned from (its parent), even when that is no longer current."""
    layout = CheckpointLayout(tmp_path / "checkpoints")
    pretrained = layout.pretrained("policy")
    first_pre = _write(layout, seed=10, target=pretrained)
    parent = (str(layout.find(first_pre)), first_pre)
    _write(layout, seed=11, target=pretrained)  # pi_pre retrained: the first is no longer current
    old = _write(layout, seed=1)
    named = _write(layout, seed=2, parent=parent)
    _write(layout, seed=3)  # current
    unnamed = layout.find(old)
    report = collect_garbage(layout, {named[:12]})  # a rollout's collected_by names seed 2's version
    assert report.versions == 5
    assert report.removable == [str(unnamed)]
    assert report.referenced == sorted([str(layout.find(named)), str(layout.find(first_pre))])
    assert len(report.current) == 2, "pi_pre's and pi^0's current versions"
    assert unnamed.is_dir(), "listing deletes nothing"
    collect_garbage(layout, {named[:12]}, delete=True)
    assert layout.find(old) is None and layout.find(named) is not None and layout.find(first_pre) is not None
