"""Checkpoints the Hugging Face way: save_pretrained / from_pretrained (local folder and offline Hub cache)
and a model card that carries the lineage. No Hub is reachable here: the cache is laid out on disk."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import ModelCard
from steps_helpers import torch_threads
from test_checkpoints import _steps, policy_config, value_config

from recap_core.checkpoints import checkpoint_sha256, predict_values
from recap_core.checkpoints.policy import TrainedPolicy
from recap_core.checkpoints.value import ValueFunction
from recap_core.training import train_policy
from recap_core.training import train_value_function as train_value


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrained")
    steps = _steps()
    with torch_threads(1):
        value, _ = train_value(steps, value_config(), out_dir=root / "value")
        policy, _ = train_policy(
            steps,
            None,
            policy_config({"horizon": 4}),
            method="sft",
            init_from=None,
            out_dir=root / "policy",
        )
    (root / "policy" / "lineage.json").write_text(json.dumps({"tables": {"steps": 7}, "rows": 123}))
    return steps, value, policy


def _hub_cache(cache: Path, repo_id: str, checkpoint: Path) -> None:
    """The layout huggingface_hub's cache has after a download of ``repo_id`` at main."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(checkpoint, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)


def test_save_pretrained_keeps_the_checkpoint_and_adds_a_model_card_with_lineage(trained, tmp_path):
    _, _, policy = trained
    policy.save_pretrained(tmp_path / "hf")
    names = sorted(p.name for p in (tmp_path / "hf").iterdir())
    assert names == ["README.md", "config.json", "lineage.json", "model.safetensors"]
    assert checkpoint_sha256(tmp_path / "hf") == policy.checkpoint.sha256  # same weights, same lineage
    card = ModelCard.load(tmp_path / "hf" / "README.md")
    assert card.data.library_name == "recap-pipeline"
    assert {"robotics", "recap-policy", "method-sft"} <= set(card.data.tags)
    assert policy.checkpoint.sha256 in card.text
    assert '"rows": 123' in card.text and "TrainedPolicy.from_pretrained" in card.text


def test_from_pretrained_loads_a_folder_and_an_offline_hub_cache(trained, tmp_path, monkeypatch):
    steps, value, policy = trained
    from_folder = ValueFunction.from_pretrained(value.checkpoint.path)
    np.testing.assert_array_equal(predict_values(from_folder, steps), predict_values(value, steps))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _hub_cache(tmp_path / "cache", "lab/recap-policy", Path(policy.checkpoint.path))
    pulled = TrainedPolicy.from_pretrained("lab/recap-policy", cache_dir=tmp_path / "cache")
    assert pulled.method == "sft" and pulled.checkpoint.sha256 == policy.checkpoint.sha256
    observations = steps.observations[:3].astype(np.float32)
    prompts = ["push"] * 3
    np.testing.assert_array_equal(
        pulled.as_chunk_policy(seed=1).act(observations, prompts),
        policy.as_chunk_policy(seed=1).act(observations, prompts),
    )


def test_from_pretrained_refuses_modified_weights(trained, tmp_path, monkeypatch):
    _, value, _ = trained
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _hub_cache(tmp_path / "cache", "lab/recap-value", Path(value.checkpoint.path))
    (weights,) = (tmp_path / "cache").rglob("model.safetensors")
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match"):
        ValueFunction.from_pretrained("lab/recap-value", cache_dir=tmp_path / "cache")
    with pytest.raises(FileNotFoundError, match="not available offline"):
        ValueFunction.from_pretrained("lab/absent", cache_dir=tmp_path / "cache")


def test_an_unsaved_model_is_written_as_a_checkpoint_by_save_pretrained(trained, tmp_path):
    steps, value, _ = trained
    in_memory = ValueFunction(value.net, value.reward_config)
    in_memory.save_pretrained(tmp_path / "fresh")
    reloaded = ValueFunction.from_pretrained(str(tmp_path / "fresh"))
    assert reloaded.checkpoint.sha256 == checkpoint_sha256(tmp_path / "fresh")
    np.testing.assert_array_equal(predict_values(reloaded, steps), predict_values(value, steps))
    assert ModelCard.load(tmp_path / "fresh" / "README.md").data.tags[2] == "recap-value"
