"""Data-parallel training: two torchrun processes (gloo on CPU) against one process on the same global
batches, in-memory and streamed; and a training asset that launches torchrun through Dagster Pipes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
from paths import PROJECT_ROOT
from safetensors.numpy import load_file
from store_helpers import make_episode

from assets.pretraining import value_function_pretrained
from assets.resources import RecapResource
from recap_core.checkpoints import read_checkpoint_config
from recap_core.checkpoints.layout import read_lineage
from recap_core.loop.labelling_stages import pretraining_labels
from recap_core.loop.training_stages import pretrain_policy, pretrain_value
from recap_core.training.distributed import Distributed

# Gradients are averaged by DDP (all-reduce) in one case and accumulated in the other: the same sums in
# float32, so the weights agree to rounding; this bound is far below any real difference in training.
WEIGHT_TOLERANCE = 1e-5


def _resource(root: Path, reader: str, checkpoints: str = "checkpoints", processes: int = 0) -> RecapResource:
    return RecapResource(
        preset="tiny",
        store_uri=str(root / "lance"),
        checkpoint_root=str(root / checkpoints),
        ledger_uri=str(root / "ledger"),
        training_reader=reader,
        training_memory_mb=1,  # several shards per rank on this data
        training_processes=processes,
    )


def _demonstrations(recap: RecapResource) -> None:
    tasks = ("reach-v3", "push-v3")
    recap.store().add_episodes([make_episode(i, length=20 + i % 37, task=tasks[i % 2]) for i in range(80)])


def _torchrun(recap: RecapResource, stage: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("DAGSTER_PIPES_CONTEXT", None)
    out = subprocess.run(
        [
            sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
            "-m", "assets.training_launcher",
            "--stage", stage, "--context", json.dumps(recap.run_context().to_dict()),
        ],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _weights(checkpoint: Path) -> dict[str, np.ndarray]:
    return load_file(str(checkpoint / "model.safetensors"))


def _assert_same_weights(a: Path, b: Path) -> None:
    left, right = _weights(a), _weights(b)
    assert left.keys() == right.keys()
    worst = max(float(np.abs(left[name] - right[name]).max()) for name in left)
    assert worst <= WEIGHT_TOLERANCE, worst
    assert any(float(np.abs(left[name]).max()) > 0.1 for name in left), "trained weights, not zeros"


@pytest.mark.parametrize("reader", ["memory", "streaming"])
def test_two_torchrun_processes_train_what_one_process_trains_on_the_same_global_batches(tmp_path, reader):
    distributed = _resource(tmp_path, reader)
    _demonstrations(distributed)
    value = _torchrun(distributed, "value_pretrained")
    pretraining_labels(distributed.run_context())
    policy = _torchrun(distributed, "policy_pretrained")

    # The reference: one process computing both ranks' halves of every global batch (accumulation).
    single = _resource(tmp_path, reader, checkpoints="reference")
    two_ranks = Distributed.simulate(2)
    reference_value = pretrain_value(single.run_context(), two_ranks)
    pretraining_labels(single.run_context())
    reference_policy = pretrain_policy(single.run_context(), two_ranks)

    for stage, result, reference in (("value", value, reference_value), ("policy", policy, reference_policy)):
        ranked, alone = (
            distributed.checkpoint_layout().pretrained(stage),
            single.checkpoint_layout().pretrained(stage),
        )
        _assert_same_weights(ranked, alone)
        assert result["history"]["gradient_steps"] == reference.history.gradient_steps > 0
        assert result["history"]["train_loss"] == pytest.approx(reference.history.train_loss, rel=1e-5)
        # one checkpoint, written once by rank 0, with the usual lineage
        assert result["checkpoint"]["path"] == str(ranked.resolve())
        lineage = read_lineage(ranked)
        assert lineage["episodes"] == 80 and lineage["steps"] == sum(20 + i % 37 for i in range(80))
    assert read_checkpoint_config(distributed.checkpoint_layout().pretrained("policy"))["kind"] == "policy"


def test_a_training_asset_launches_torchrun_through_pipes(tmp_path):
    recap = _resource(tmp_path, "streaming", processes=2)
    _demonstrations(recap)
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        result = dg.materialize([value_function_pretrained], resources={"recap": recap}, instance=instance)
        assert result.success
        (materialisation,) = result.asset_materializations_for_node("value_function_pretrained")
        meta = materialisation.metadata
        assert Path(meta["checkpoint"].value) == recap.checkpoint_layout().pretrained("value").resolve()
        assert meta["episodes"].value == 80
        logs = [
            record.user_message
            for record in instance.all_logs(result.run_id)
            if record.user_message and "training on 2 processes" in record.user_message
        ]
        assert logs, "the rank-0 log line came back through Pipes"
