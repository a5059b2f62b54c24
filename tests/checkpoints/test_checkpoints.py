"""Checkpoints (safetensors + JSON, parent lineage), loaders, the ChunkPolicy contract and hub transfer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from steps_helpers import ToyEpisode, make_steps

from recap_core.checkpoints import (
    checkpoint_sha256,
    load_policy,
    load_value_function,
    predict_values,
    pull_checkpoint,
)
from recap_core.models import DistributionalValueFunction, FlowPolicyConfig, ValueNetConfig
from recap_core.policy_api import ChunkPolicy
from recap_core.training import PolicyTrainConfig, ValueTrainConfig, train_policy, train_value_function

QUICK = {"epochs": 2, "batch_size": 64}
NET = {"hidden": 32, "depth": 2}


def value_config(net: dict | None = None, **optimisation) -> ValueTrainConfig:
    """A quick value config: QUICK's optimisation and NET's small network, each with changes."""
    return ValueTrainConfig(
        **{**QUICK, **optimisation}, architecture=ValueNetConfig(**{**NET, **(net or {})})
    )


def policy_config(net: dict | None = None, **optimisation) -> PolicyTrainConfig:
    return PolicyTrainConfig(
        **{**QUICK, **optimisation}, architecture=FlowPolicyConfig(**{**NET, **(net or {})})
    )


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _steps(seed: int = 0, n_episodes: int = 12, obs_dim: int = 4):
    rng = np.random.default_rng(seed)
    episodes = []
    for i in range(n_episodes):
        length = int(rng.integers(8, 15))
        episodes.append(
            ToyEpisode(
                task="reach" if i % 2 else "push",
                success=bool(i % 3),
                observations=rng.normal(size=(length, obs_dim)),
                actions=rng.uniform(-1, 1, size=(length, 2)),
                is_correction=rng.random(length) < 0.1,
            )
        )
    return make_steps(episodes)


def test_value_checkpoint_round_trip_is_exact_and_not_pickled(tmp_path: Path) -> None:
    steps = _steps()
    vf, history = train_value_function(steps, value_config(), out_dir=tmp_path / "v")
    assert sorted(p.name for p in (tmp_path / "v").iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((tmp_path / "v" / "config.json").read_text())
    assert config["kind"] == "value" and config["parent"] is None
    assert config["architecture"]["n_bins"] == 201
    assert len(config["normalisation"]["obs_mean"]) == 4
    assert config["reward"]["task_max_length"] == {
        "push": int(steps.episodes.filter(steps.episodes["task"] == "push")["length"].max()),
        "reach": int(steps.episodes.filter(steps.episodes["task"] == "reach")["length"].max()),
    }
    assert config["training"]["history"]["train_loss"] == history.train_loss
    assert vf.checkpoint is not None and vf.checkpoint.sha256 == checkpoint_sha256(tmp_path / "v")
    loaded = load_value_function(tmp_path / "v")
    np.testing.assert_array_equal(predict_values(loaded, steps), predict_values(vf, steps))
    values = predict_values(loaded, steps)
    assert values.shape == (len(steps),) and values.min() >= -1.0 and values.max() <= 0.0


def test_finetuning_records_parent_and_keeps_its_units(tmp_path: Path) -> None:
    steps = _steps()
    parent, _ = train_value_function(steps, value_config(), out_dir=tmp_path / "pre")
    task_steps = steps.select_episodes(steps.episodes["task"].to_numpy() == "reach")
    child, _ = train_value_function(
        task_steps, value_config(), init_from=tmp_path / "pre", out_dir=tmp_path / "ft"
    )
    config = json.loads((tmp_path / "ft" / "config.json").read_text())
    assert config["parent"] == {"path": str((tmp_path / "pre").resolve()), "sha256": parent.checkpoint.sha256}
    assert child.reward_config.task_max_length == parent.reward_config.task_max_length
    assert child.checkpoint.sha256 != parent.checkpoint.sha256


def test_policy_checkpoint_loads_as_chunk_policy(tmp_path: Path) -> None:
    steps = _steps()
    labels = np.random.default_rng(0).random(len(steps)) < 0.4
    trained, _ = train_policy(steps, labels, policy_config({"horizon": 5}), out_dir=tmp_path / "p")
    policy = load_policy(tmp_path / "p", beta=1.5)
    assert isinstance(policy, ChunkPolicy)
    assert policy.horizon == 5
    obs = steps.observations[:7]
    prompts = steps.per_step("prompt")[:7].tolist()
    chunks = policy.act(obs, prompts)
    assert chunks.shape == (7, 5, 2) and chunks.dtype == np.float32 and np.isfinite(chunks).all()
    again = load_policy(tmp_path / "p", beta=1.5).act(obs, prompts)
    np.testing.assert_array_equal(chunks, again)
    np.testing.assert_array_equal(trained.as_chunk_policy(beta=1.5).act(obs, prompts), chunks)
    with pytest.raises(ValueError, match="observations must be"):
        policy.act(obs[:, :3], prompts)
    train_policy(
        steps,
        None,
        policy_config({"horizon": 5}),
        method="sft",
        init_from=tmp_path / "p",
        out_dir=tmp_path / "sft",
    )
    assert json.loads((tmp_path / "sft" / "config.json").read_text())["parent"][
        "sha256"
    ] == checkpoint_sha256(tmp_path / "p")
    assert json.loads((tmp_path / "sft" / "config.json").read_text())["method"] == "sft"


def test_training_is_seeded(tmp_path: Path) -> None:
    steps = _steps()
    a, ha = train_value_function(steps, value_config(seed=3))
    b, hb = train_value_function(steps, value_config(seed=3))
    assert ha.train_loss == hb.train_loss
    np.testing.assert_array_equal(predict_values(a, steps), predict_values(b, steps))


def test_bad_input_names_episode_and_column() -> None:
    steps = _steps()
    steps.observations[20, 1] = np.nan
    bad_episode = steps.episodes["episode_id"][int(steps.episode_index[20])]
    with pytest.raises(ValueError, match=f"episode {bad_episode}: column 'observation'"):
        train_value_function(steps, value_config())
    with pytest.raises(ValueError, match="method='recap' needs one indicator per step"):
        train_policy(_steps(), None, policy_config())
    with pytest.raises(ValueError, match="method must be one of"):
        train_policy(_steps(), None, policy_config(), method="dagger")


def test_pull_resolves_offline_and_verifies_sha(tmp_path: Path) -> None:
    steps = _steps()
    vf, _ = train_value_function(steps, value_config(), out_dir=tmp_path / "v")
    mirror = tmp_path / "mirror"
    shutil.copytree(tmp_path / "v", mirror)
    pulled = pull_checkpoint(
        "lab/value-pre", local_dir=mirror, local_files_only=True, expected_sha256=vf.checkpoint.sha256
    )
    np.testing.assert_array_equal(
        predict_values(load_value_function(pulled), steps), predict_values(vf, steps)
    )
    # a re-uploaded config.json that changes what the checkpoint is (another method) is refused; one that
    # changes only its layout is the same checkpoint (its content sha256 is over the parsed fields)
    config = (mirror / "config.json").read_text()
    (mirror / "config.json").write_text(config.replace('"method"', '"method" ', 1))
    assert pull_checkpoint(
        "lab/value-pre", local_dir=mirror, local_files_only=True, expected_sha256=vf.checkpoint.sha256
    )
    (mirror / "config.json").write_text(config.replace('"distributional-mc"', '"distributional-td"', 1))
    with pytest.raises(ValueError, match="sha256"):
        pull_checkpoint(
            "lab/value-pre", local_dir=mirror, local_files_only=True, expected_sha256=vf.checkpoint.sha256
        )
    with pytest.raises(FileNotFoundError, match="not available offline"):
        pull_checkpoint("lab/missing", cache_dir=tmp_path / "cache", local_files_only=True)


def test_transformer_backbone_trains_and_round_trips(tmp_path: Path) -> None:
    steps = _steps(n_episodes=20)
    config = value_config({"backbone": "transformer"}, epochs=6, val_fraction=0.0, lr=1e-3)
    vf, history = train_value_function(steps, config, out_dir=tmp_path / "v")
    assert history.train_loss[-1] < history.train_loss[0] - 0.3
    assert (
        json.loads((tmp_path / "v" / "config.json").read_text())["architecture"]["backbone"] == "transformer"
    )
    np.testing.assert_array_equal(
        predict_values(load_value_function(tmp_path / "v"), steps), predict_values(vf, steps)
    )
    labels = np.ones(len(steps), dtype=bool)
    pconfig = policy_config({"backbone": "transformer", "horizon": 3})
    train_policy(steps, labels, pconfig, out_dir=tmp_path / "p")
    assert load_policy(tmp_path / "p", beta=2.0).act(steps.observations[:3], ["x"] * 3).shape == (3, 3, 2)


def test_cli_bench_and_inspect_print_json(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pipelines.cli.main import app

    runner = CliRunner()
    result = runner.invoke(app, ["bench", "core", "--json", "--frames", "2000", "--train-batches", "2"])
    assert result.exit_code == 0, result.output
    numbers = json.loads(result.output)
    assert (numbers["device"], numbers["precision"]) == (
        ("cuda:0", "bf16") if torch.cuda.is_available() else ("cpu", "fp32")
    )
    for key in (
        "value_labelling_frames_per_s",
        "policy_training_samples_per_s",
        "policy_act_batch32_beta1_ms",
    ):
        assert numbers[key] > 0
    images = numbers["images"]
    assert images["image_size"] == 64 and images["now"]["policy_training_samples_per_s"] > 0
    assert images["now"]["encoder_width"] == 16 and images["before"]["encoder_width"] == 32
    train_value_function(_steps(), value_config(), out_dir=tmp_path / "v")
    result = runner.invoke(app, ["checkpoints", "inspect", str(tmp_path / "v")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["kind"] == "value" and summary["sha256"] == checkpoint_sha256(tmp_path / "v")


def _corrupt_flip_bytes(directory: Path) -> None:
    weights = directory / "model.safetensors"
    data = bytearray(weights.read_bytes())
    for i in range(len(data) - 200, len(data)):  # tensor data sits after the JSON header
        data[i] ^= 0xFF
    weights.write_bytes(bytes(data))


def _corrupt_truncate(directory: Path) -> None:
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])


def _resave(directory: Path, mutate) -> None:
    """Write weights that are well-formed and carry a matching weights and content sha256 (as a careful
    writer would), but hold bad values: only the finiteness check can refuse them."""
    from safetensors.torch import load_file, save_file

    from recap_core.checkpoints.format import content_sha256, file_sha256

    tensors = load_file(str(directory / "model.safetensors"))
    mutate(tensors)
    save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "recap-checkpoint"})
    config = json.loads((directory / "config.json").read_text())
    config["weights_sha256"] = file_sha256(directory / "model.safetensors")
    config["content_sha256"] = content_sha256(config, config["weights_sha256"])
    (directory / "config.json").write_text(json.dumps(config))


def _nan_weight(tensors) -> None:
    name = next(k for k in tensors if k.endswith("weight"))
    tensors[name].view(-1)[0] = float("nan")


def _nan_normalisation(tensors) -> None:
    name = next(k for k in tensors if k.startswith("obs_norm") and "mean" in k)
    tensors[name][0] = float("nan")


def _invalid_json(directory: Path) -> None:
    (directory / "config.json").write_text('{"format": "recap-checkpoint", ')


CORRUPTIONS = {
    "flipped tensor bytes": (_corrupt_flip_bytes, r"sha256 \w+ does not match the \w+ recorded"),
    "truncated weights": (_corrupt_truncate, r"sha256 \w+ does not match"),
    "nan weight": (lambda d: _resave(d, _nan_weight), r"tensor '.*weight' holds nan"),
    "nan normalisation": (lambda d: _resave(d, _nan_normalisation), r"tensor 'obs_norm.*' holds nan"),
    "invalid config.json": (_invalid_json, r"config.json: not valid JSON"),
    "missing weights": (lambda d: (d / "model.safetensors").unlink(), r"has no model.safetensors"),
}


@pytest.fixture(scope="module")
def trained_checkpoints(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ckpt")
    steps = _steps()
    train_value_function(steps, value_config(), out_dir=root / "value")
    train_policy(steps, np.ones(len(steps), bool), policy_config({"horizon": 4}), out_dir=root / "policy")
    return {"value": root / "value", "policy": root / "policy"}


@pytest.mark.parametrize("kind", ["value", "policy"])
@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupted_checkpoints_are_refused_on_load_and_inspect(
    trained_checkpoints, tmp_path, kind, corruption
):
    from typer.testing import CliRunner

    from pipelines.cli.main import app

    directory = tmp_path / kind
    shutil.copytree(trained_checkpoints[kind], directory)
    corrupt, message = CORRUPTIONS[corruption]
    corrupt(directory)
    loader = load_value_function if kind == "value" else load_policy
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        loader(directory)
    result = CliRunner().invoke(app, ["checkpoints", "inspect", str(directory)])
    assert result.exit_code != 0 and '"sha256"' not in result.output


def test_an_intact_checkpoint_is_verified_by_inspect(trained_checkpoints):
    from typer.testing import CliRunner

    from pipelines.cli.main import app

    result = CliRunner().invoke(app, ["checkpoints", "inspect", str(trained_checkpoints["policy"])])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["verified"] is True


def test_finetuning_refuses_an_architecture_the_checkpoint_does_not_have(tmp_path: Path) -> None:
    """A finetune config's architecture used to be ignored silently (the checkpoint's won)."""
    steps = _steps()
    train_value_function(steps, value_config(), out_dir=tmp_path / "v")
    with pytest.raises(ValueError, match=r"hidden 64 \(checkpoint: 32\)"):
        train_value_function(steps, value_config({"hidden": 64}), init_from=tmp_path / "v")
    train_policy(steps, None, policy_config({"horizon": 5}), method="sft", out_dir=tmp_path / "p")
    wider = policy_config({"depth": 4, "horizon": 5})
    with pytest.raises(ValueError, match=r"depth 4 \(checkpoint: 2\)"):
        train_policy(steps, None, wider, method="sft", init_from=tmp_path / "p")


def test_checkpoints_of_the_older_config_layout_still_load(tmp_path: Path) -> None:
    """Before the value support moved into the architecture, config.json named it v_min / v_max there and
    repeated it in the reward as value_min / value_max; before the progress input, no time_aware."""
    steps = _steps()
    vf, _ = train_value_function(steps, value_config(), out_dir=tmp_path / "v")
    file = tmp_path / "v" / "config.json"
    config = json.loads(file.read_text())
    architecture = config["architecture"]
    architecture["v_min"], architecture["v_max"] = (
        architecture.pop("value_min"),
        architecture.pop("value_max"),
    )
    config["reward"].update(value_min=-1.0, value_max=0.0)
    del config["content_sha256"]  # written before the content sha256 existed
    file.write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"no content_sha256 .*allow a legacy checkpoint explicitly"):
        load_value_function(tmp_path / "v")
    old = load_value_function(tmp_path / "v", allow_legacy=True)
    assert old.net.config == vf.net.config and old.reward_config == vf.reward_config
    np.testing.assert_array_equal(predict_values(old, steps), predict_values(vf, steps))
    stored = {"obs_dim": 4, "n_bins": 51, "v_min": -1.0, "v_max": 0.0, "hidden": 32}
    assert ValueNetConfig.from_dict(stored) == ValueNetConfig(
        obs_dim=4, n_bins=51, value_min=-1.0, value_max=0.0, hidden=32, time_aware=False
    )


def test_a_training_config_holds_its_network_unsized() -> None:
    """The architecture is written once, in the training config; sizes come from the data at build."""
    config = policy_config({"horizon": 5})
    assert (config.architecture.obs_dim, config.architecture.action_dim) == (0, 0)
    trained, _ = train_policy(_steps(), None, config, method="sft")
    assert trained.net.config == config.architecture.sized(4, 2, conditioned=False)
    with pytest.raises(ValueError, match=r"build from config.sized\(obs_dim\)"):
        DistributionalValueFunction(ValueNetConfig())


def _edit_config(directory: Path, edit) -> None:
    config = json.loads((directory / "config.json").read_text())
    edit(config)
    (directory / "config.json").write_text(json.dumps(config))


def _scale_weights(directory: Path, factor: float) -> None:
    """Every weight times ``factor``, the recorded weights sha256 updated to match (what a careless or
    malicious edit would do), the content sha256 left as it was."""
    from safetensors.torch import load_file, save_file

    from recap_core.checkpoints.format import file_sha256

    tensors = {
        name: tensor * factor for name, tensor in load_file(str(directory / "model.safetensors")).items()
    }
    save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "recap-checkpoint"})
    _edit_config(directory, lambda c: c.update(weights_sha256=file_sha256(directory / "model.safetensors")))


# Edits that change what a checkpoint does; each used to load and be reported "verified": true.
EDITS = {
    ("policy", "flow_steps 10 -> 1"): lambda d: _edit_config(
        d, lambda c: c["architecture"].update(flow_steps=1)
    ),
    ("policy", "conditioned true -> false"): lambda d: _edit_config(
        d, lambda c: c["architecture"].update(conditioned=False)
    ),
    ("policy", "method"): lambda d: _edit_config(d, lambda c: c.update(method="sft")),
    ("policy", "normalisation statistics"): lambda d: _edit_config(
        d, lambda c: c["normalisation"]["action_std"].__setitem__(0, 0.2)
    ),
    ("policy", "parent sha256"): lambda d: _edit_config(
        d, lambda c: c.update(parent={"path": "/x", "sha256": "0" * 64})
    ),
    ("policy", "weights x3, weights sha updated"): lambda d: _scale_weights(d, 3.0),
    ("value", "task_max_length"): lambda d: _edit_config(
        d, lambda c: c["reward"]["task_max_length"].update(toy=999)
    ),
    ("value", "weights_sha256 removed"): lambda d: _edit_config(d, lambda c: c.pop("weights_sha256")),
}


@pytest.mark.parametrize(("kind", "edit"), sorted(EDITS))
def test_an_edited_checkpoint_is_refused_on_load_and_by_inspect(trained_checkpoints, tmp_path, kind, edit):
    from typer.testing import CliRunner

    from pipelines.cli.main import app

    directory = tmp_path / kind
    shutil.copytree(trained_checkpoints[kind], directory)
    EDITS[(kind, edit)](directory)
    loader = load_value_function if kind == "value" else load_policy
    with pytest.raises(ValueError, match=r"sha256 \w+ does not match"):
        loader(directory)
    result = CliRunner().invoke(app, ["checkpoints", "inspect", str(directory)])
    assert result.exit_code != 0 and isinstance(result.exception, ValueError), result.output
    assert '"verified"' not in result.output


def test_a_checkpoint_without_its_content_sha_loads_only_as_an_explicit_legacy_load(
    trained_checkpoints, tmp_path
):
    from typer.testing import CliRunner

    from pipelines.cli.main import app

    directory = tmp_path / "policy"
    shutil.copytree(trained_checkpoints["policy"], directory)
    _edit_config(directory, lambda c: c.pop("content_sha256"))
    with pytest.raises(ValueError, match="no content_sha256"):
        load_policy(directory)
    refused = CliRunner().invoke(app, ["checkpoints", "inspect", str(directory)])
    assert refused.exit_code != 0 and isinstance(refused.exception, ValueError)
    legacy = CliRunner().invoke(app, ["checkpoints", "inspect", str(directory), "--allow-legacy"])
    assert legacy.exit_code == 0, legacy.output
    report = json.loads(legacy.output)
    assert report["verified"] is False and report["legacy"] is True
    # a legacy checkpoint is still checked against the weights sha256 it records
    _scale_weights(directory, 3.0)
    _edit_config(directory, lambda c: c.update(weights_sha256="f" * 64))
    with pytest.raises(ValueError, match="does not match"):
        load_policy(directory, allow_legacy=True)


def test_a_config_of_another_kind_is_named_not_a_type_error(trained_checkpoints, tmp_path):
    """A value checkpoint's config relabelled as a policy's, its content sha recomputed to match: the
    loader names the file and the architecture (it used to raise TypeError: unexpected keyword)."""
    from recap_core.checkpoints.format import content_sha256

    directory = tmp_path / "relabelled"
    shutil.copytree(trained_checkpoints["value"], directory)
    _edit_config(directory, lambda c: c.update(kind="policy"))
    _edit_config(directory, lambda c: c.update(content_sha256=content_sha256(c, c["weights_sha256"])))
    with pytest.raises(ValueError, match=r"config.json: its architecture is not a policy network's"):
        load_policy(directory)
