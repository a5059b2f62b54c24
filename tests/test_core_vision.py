"""Image inputs: the encoder and its augmentation, camera layouts in checkpoints, pretrained encoders from
a local Hugging Face folder, and a learning test that fails if the image path is broken."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from core_helpers import ToyEpisode, make_steps, torch_threads

from recap_core.models import FlowPolicyConfig, ValueNetConfig
from recap_core.models.vision import (
    ConvEncoder,
    VisionConfig,
    build_encoder,
    random_shift,
    register_encoder,
    save_encoder,
)
from recap_core.training import (
    PolicyTrainConfig,
    ValueTrainConfig,
    load_policy,
    load_value_function,
    predict_values,
    train_policy,
    train_value_function,
)

CAMERA = VisionConfig(cameras=("top",), image_size=16, feature_dim=8, encoder_width=4, shift_pad=2)
NET = {"hidden": 32, "depth": 2}
QUICK = {"epochs": 2, "batch_size": 32}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    with torch_threads(1):
        yield


def _value_config(vision: VisionConfig) -> ValueTrainConfig:
    return ValueTrainConfig(**QUICK, architecture=ValueNetConfig(**NET, images=vision))


def _steps_with_frames(seed: int = 0, n_episodes: int = 8, size: int = 16, cameras=("top",)):
    rng = np.random.default_rng(seed)
    episodes = []
    for i in range(n_episodes):
        length = int(rng.integers(6, 10))
        episodes.append(
            ToyEpisode(
                "reach", bool(i % 2), rng.normal(size=(length, 4)), rng.uniform(-1, 1, size=(length, 2))
            )
        )
    steps = make_steps(episodes)
    frames = {c: rng.integers(0, 256, size=(len(steps), size, size, 3), dtype=np.uint8) for c in cameras}
    return steps.with_images(frames)


def test_random_shift_moves_pixels_but_keeps_the_shape() -> None:
    images = torch.rand(6, 3, 16, 16)
    shifted = random_shift(images, 3, torch.Generator().manual_seed(0))
    assert shifted.shape == images.shape
    assert not torch.equal(shifted, images)
    # every shifted image is a window of the edge-padded original
    padded = torch.nn.functional.pad(images, (3, 3, 3, 3), mode="replicate")
    for k in range(len(images)):
        windows = padded[k].unfold(1, 16, 1).unfold(2, 16, 1)  # (C, 7, 7, 16, 16)
        assert any(torch.equal(windows[:, i, j], shifted[k]) for i in range(7) for j in range(7))
    assert torch.equal(random_shift(images, 0), images)


def test_encoder_output_shape_and_augmentation_only_in_training() -> None:
    encoder = build_encoder(CAMERA)
    assert isinstance(encoder, ConvEncoder)
    assert encoder(torch.rand(5, 3, 16, 16)).shape == (5, CAMERA.feature_dim)
    config = FlowPolicyConfig(**NET, images=CAMERA).sized(4, 2)
    from recap_core.models import FlowMatchingPolicy

    net = FlowMatchingPolicy(config)
    frames = {"top": torch.randint(0, 256, (5, 16, 16, 3), dtype=torch.uint8)}
    obs = torch.randn(5, 4)
    net.eval()
    first = net.context(obs, ["p"] * 5, frames)
    assert len(first) == 3 and first[2].shape == (5, CAMERA.feature_dim)
    assert torch.equal(first[2], net.context(obs, ["p"] * 5, frames)[2])  # no augmentation at inference
    net.train()
    assert not torch.equal(first[2], net.context(obs, ["p"] * 5, frames)[2])  # shifted in training
    with pytest.raises(ValueError, match=r"no frames were given for camera\(s\) \['top'\]"):
        net.context(obs, ["p"] * 5, None)
    with pytest.raises(ValueError, match=r"camera 'top': frames of shape \(5, 8, 8, 3\)"):
        net.context(obs, ["p"] * 5, {"top": torch.zeros(5, 8, 8, 3, dtype=torch.uint8)})


def test_checkpoints_round_trip_with_cameras(tmp_path: Path) -> None:
    steps = _steps_with_frames()
    vf, _ = train_value_function(
        steps,
        ValueTrainConfig(**QUICK, architecture=ValueNetConfig(**NET, images=CAMERA)),
        out_dir=tmp_path / "v",
    )
    stored = json.loads((tmp_path / "v" / "config.json").read_text())["architecture"]["images"]
    assert stored["cameras"] == ["top"] and stored["image_size"] == 16
    loaded = load_value_function(tmp_path / "v")
    assert loaded.net.config.images == CAMERA
    np.testing.assert_array_equal(predict_values(loaded, steps), predict_values(vf, steps))

    policy, _ = train_policy(
        steps,
        None,
        PolicyTrainConfig(**QUICK, architecture=FlowPolicyConfig(**NET, horizon=3, images=CAMERA)),
        method="sft",
        out_dir=tmp_path / "pi",
    )
    chunk_policy = load_policy(tmp_path / "pi", seed=3)
    assert chunk_policy.vision == CAMERA
    frames = {"top": steps.images["top"][:4]}
    again = policy.as_chunk_policy(seed=3).act(steps.observations[:4], ["p"] * 4, images=frames)
    np.testing.assert_array_equal(chunk_policy.act(steps.observations[:4], ["p"] * 4, images=frames), again)
    with pytest.raises(ValueError, match=r"expects cameras \['top'\] at 16x16x3 px"):
        chunk_policy.act(steps.observations[:4], ["p"] * 4)


def test_a_state_only_checkpoint_has_no_camera_fields_and_old_ones_load_state_only() -> None:
    assert "images" not in ValueNetConfig().to_dict() and "images" not in FlowPolicyConfig().to_dict()
    assert ValueNetConfig.from_dict(ValueNetConfig(obs_dim=3).to_dict()).images == VisionConfig()
    assert not FlowPolicyConfig.from_dict({"obs_dim": 3, "action_dim": 2}).images.enabled


def test_mismatched_camera_layouts_are_refused_naming_both(tmp_path: Path) -> None:
    steps = _steps_with_frames()
    train_value_function(
        steps,
        ValueTrainConfig(**QUICK, architecture=ValueNetConfig(**NET, images=CAMERA)),
        out_dir=tmp_path / "v",
    )
    other = VisionConfig(cameras=("wrist",), image_size=32, feature_dim=8, encoder_width=4, shift_pad=2)
    with pytest.raises(
        ValueError,
        match=r"expects cameras \['top'\] at 16x16x3 px \(encoder 'conv'\), got cameras \['wrist'\] at 32",
    ):
        train_value_function(
            steps,
            ValueTrainConfig(**QUICK, architecture=ValueNetConfig(**NET, images=other)),
            init_from=tmp_path / "v",
        )
    with pytest.raises(ValueError, match=r"expects cameras \['top'\].*got no cameras \(state only\)"):
        train_value_function(
            steps, ValueTrainConfig(**QUICK, architecture=ValueNetConfig(**NET)), init_from=tmp_path / "v"
        )
    vf = load_value_function(tmp_path / "v")
    with pytest.raises(ValueError, match=r"no frames of camera\(s\) \['top'\] \(loaded: \['wrist'\]\)"):
        predict_values(vf, _steps_with_frames(cameras=("wrist",)))
    with pytest.raises(ValueError, match=r"camera 'top': stored frames are \(32, 32, 3\)"):
        predict_values(vf, _steps_with_frames(size=32))


class _PoolEncoder(torch.nn.Module):
    """A user's encoder: one conv and a global average pool."""

    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(config.channels, config.feature_dim, 3, padding=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.conv(images).mean(dim=(2, 3))


def _pool_net(**layout) -> torch.nn.Module:
    from recap_core.models import DistributionalValueFunction

    vision = VisionConfig(cameras=("top",), image_size=16, encoder="pool-test", **layout)
    return DistributionalValueFunction(ValueNetConfig(**NET, images=vision).sized(4))


def test_a_registered_encoder_loads_pretrained_weights_from_a_local_hf_folder(tmp_path, monkeypatch) -> None:
    register_encoder("pool-test", _PoolEncoder)
    layout = VisionConfig(cameras=("top",), image_size=16, encoder="pool-test", feature_dim=8)
    source = _PoolEncoder(layout)
    folder = save_encoder(source, layout, tmp_path / "encoder")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    net = _pool_net(feature_dim=8, pretrained=str(folder))
    assert torch.equal(net.cameras.encoders["top"].conv.weight, source.conv.weight)

    # the same folder as a Hub repository in the offline cache, named by repo id
    import huggingface_hub.constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "cache" / "models--lab--encoder"
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    by_id = _pool_net(feature_dim=8, pretrained="lab/encoder")
    assert torch.equal(by_id.cameras.encoders["top"].conv.weight, source.conv.weight)
    with pytest.raises(FileNotFoundError, match="neither a folder nor in the local Hugging Face cache"):
        _pool_net(feature_dim=8, pretrained="lab/absent")
    with pytest.raises(ValueError, match="has feature_dim 8, the architecture asks for 16"):
        _pool_net(feature_dim=16, pretrained=str(folder))
