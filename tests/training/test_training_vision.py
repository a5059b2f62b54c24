"""Image inputs: the encoder and its augmentation, camera layouts in checkpoints, pretrained encoders from
a local Hugging Face folder, and a learning test that fails if the image path is broken."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from steps_helpers import ToyEpisode, make_steps

from recap_core.checkpoints import load_policy, load_value_function, predict_values
from recap_core.models import FlowPolicyConfig, ValueNetConfig
from recap_core.models.vision import (
    ConvEncoder,
    VisionConfig,
    build_encoder,
    random_shift,
    register_encoder,
    save_encoder,
)
from recap_core.training import PolicyTrainConfig, ValueTrainConfig, train_policy, train_value_function

CAMERA = VisionConfig(cameras=("top",), image_size=16, feature_dim=8, encoder_width=4, shift_pad=2)
NET = {"hidden": 32, "depth": 2}
HIDDEN_GOAL = "point-reach-hidden-goal"
QUICK = {"epochs": 2, "batch_size": 32}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


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

    def finetune(images: VisionConfig) -> None:
        config = ValueTrainConfig(**QUICK, architecture=ValueNetConfig(**NET, images=images))
        train_value_function(steps, config, init_from=tmp_path / "v")

    other = VisionConfig(cameras=("wrist",), image_size=32, feature_dim=8, encoder_width=4, shift_pad=2)
    with pytest.raises(
        ValueError,
        match=r"expects cameras \['top'\] at 16x16x3 px rendered fast \(encoder 'conv'\), got cameras \['w",
    ):
        finetune(other)
    # frames rendered at another quality are another input distribution: refused like another camera
    with pytest.raises(
        ValueError,
        match=r"rendered fast \(encoder 'conv'\), got cameras \['top'\] at 16x16x3 px rendered presentation",
    ):
        finetune(dataclasses.replace(CAMERA, render_quality=("presentation",)))
    with pytest.raises(ValueError, match=r"expects cameras \['top'\].*got no cameras \(state only\)"):
        finetune(VisionConfig())
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


# --- frames from the store, and a learning test on a task whose goal only the camera shows -------------

EVAL_SEEDS = list(range(1000, 1032))


@pytest.fixture(scope="module")
def hidden_goal_store(tmp_path_factory):
    """Clean expert demonstrations of point-reach with the goal hidden from the state, "top" at 32 px."""
    from recap_core.sim.cameras import CameraSpec, with_cameras
    from recap_core.sim.operator import DemoConfig, collect_demos
    from recap_core.sim.tasks import get_task, with_max_steps
    from recap_core.store import EpisodeStore

    task = with_cameras(with_max_steps(get_task(HIDDEN_GOAL), 50), CameraSpec(("top",), 32))
    operator = DemoConfig(speed_range=(1, 1), noise_range=(0, 0.05), mistake_rate=0, failure_share=0)
    episodes = list(collect_demos(task, range(60), operator))
    assert all(e.success for e in episodes) and episodes[0].observations.shape[1] == 4  # no goal in state
    store = EpisodeStore(str(tmp_path_factory.mktemp("hidden-goal") / "store"))
    store.add_episodes(episodes)
    return store, episodes


def test_store_loads_the_frames_a_network_reads_in_memory_and_streamed(hidden_goal_store) -> None:
    from recap_core.sim.cameras import decode_frames
    from recap_core.store.streaming import StreamingStepReader

    store, episodes = hidden_goal_store
    plain = store.load_steps(task=HIDDEN_GOAL)
    assert plain.images == {}
    steps = store.load_steps(task=HIDDEN_GOAL, cameras=("top",), image_size=32)
    assert steps.images["top"].shape == (len(steps), 32, 32, 3) and steps.images["top"].dtype == np.uint8
    by_id = {e.episode_id: e for e in episodes}
    for row in (0, 7, len(steps.episodes) - 1):
        episode = by_id[steps.episodes["episode_id"][row]]
        at = np.flatnonzero(steps.episode_index == row)
        np.testing.assert_array_equal(steps.images["top"][at], decode_frames(episode.images["top"]))

    versions = store.versions()
    selection = store.episodes(task=HIDDEN_GOAL, versions=versions).frame
    reader = StreamingStepReader(store, selection, versions, 64 * 2**20, ("top",), 32)
    shard = reader.read(np.arange(3, 9))
    first = np.flatnonzero(np.isin(steps.episodes["episode_id"].to_numpy(), shard.episodes["episode_id"]))
    expected = steps.select_episodes(np.isin(np.arange(len(steps.episodes)), first))
    np.testing.assert_array_equal(shard.images["top"], expected.images["top"])

    with pytest.raises(ValueError, match=r"no column 'image_wrist' \(image columns: \['image_top'\]\)"):
        store.load_steps(task=HIDDEN_GOAL, cameras=("wrist",))
    with pytest.raises(
        ValueError, match=r"column 'image_top': stored frames are 32x32 px, the network expects 64"
    ):
        store.load_steps(task=HIDDEN_GOAL, cameras=("top",), image_size=64)


def test_streamed_frames_come_from_the_frame_cache_after_the_first_read_and_are_the_same(
    hidden_goal_store, tmp_path
) -> None:
    from recap_core.store.frame_cache import FrameCache
    from recap_core.store.streaming import StreamingStepReader

    store, _ = hidden_goal_store
    versions = store.versions()
    selection = store.episodes(task=HIDDEN_GOAL, versions=versions).frame
    uncached = StreamingStepReader(store, selection, versions, 64 * 2**20, ("top",), 32)
    cache = FrameCache(tmp_path / "frames")
    reader = StreamingStepReader(store, selection, versions, 64 * 2**20, ("top",), 32, cache)
    rows = np.arange(2, 12)
    expected = uncached.read(rows).images["top"]
    np.testing.assert_array_equal(reader.read(rows).images["top"], expected)  # decoded, then cached
    assert (cache.hits, cache.misses) == (0, 10)
    np.testing.assert_array_equal(reader.read(rows).images["top"], expected)  # from the cache alone
    assert (cache.hits, cache.misses) == (10, 10)
    # another shard: cached episodes and new ones mixed; the new ones are decoded and cached too
    np.testing.assert_array_equal(
        reader.read(np.arange(8, 16)).images["top"], uncached.read(np.arange(8, 16)).images["top"]
    )
    assert len(list((tmp_path / "frames").rglob("*.npy"))) == 14 and not list(
        (tmp_path / "frames").rglob("*.partial")
    )
    # an entry of the wrong shape (a file cut short, replaced) is a miss, decoded and written again
    victim = next((tmp_path / "frames").rglob("*.npy"))
    np.save(victim, np.zeros((1, 32, 32, 3), np.uint8))
    np.testing.assert_array_equal(
        reader.read(np.arange(0, 20)).images["top"], uncached.read(np.arange(0, 20)).images["top"]
    )
    assert np.load(victim).shape[0] > 1


def _final_distances(policy, task, seeds: list[int]) -> np.ndarray:
    """How far from its goal each episode ends (the goal is read from the environment, not the policy)."""
    from recap_core.sim.rollouts import RolloutConfig, run_policy

    env = task.make_env()
    goals = {}
    for seed in seeds:
        env.reset(seed)
        goals[seed] = env.env.goal
    distances = {
        r.seed: float(np.hypot(*(r.observations[-1, :2] - goals[r.seed])))
        for r in run_policy(policy, task, seeds, RolloutConfig(num_envs=len(seeds)))
    }
    return np.array([distances[s] for s in seeds])


def test_a_policy_that_sees_the_goal_only_in_its_camera_reaches_it_and_a_blind_one_cannot(
    hidden_goal_store, tmp_path: Path
) -> None:
    """Same demonstrations, same budget: one policy reads the "top" camera, the other only the state
    (position, velocity). Only the image shows where the goal is, so a broken image path (frames not
    loaded, not passed at inference, misaligned with their steps) makes the image policy as blind."""
    from recap_core.sim.tasks import get_task, with_max_steps

    store, _ = hidden_goal_store
    steps = store.load_steps(task=HIDDEN_GOAL, cameras=("top",), image_size=32)
    vision = VisionConfig(cameras=("top",), image_size=32, feature_dim=32, encoder_width=16, shift_pad=2)

    def config(images: VisionConfig) -> PolicyTrainConfig:
        net = FlowPolicyConfig(hidden=128, depth=2, horizon=4, flow_steps=5, images=images)
        return PolicyTrainConfig(
            epochs=1, steps_per_epoch=800, batch_size=64, lr=1e-3, val_fraction=0.0, weights="last",
            architecture=net,
        )  # fmt: skip

    train_policy(steps, None, config(vision), method="sft", out_dir=tmp_path / "seeing")
    train_policy(steps, None, config(VisionConfig()), method="sft", out_dir=tmp_path / "blind")
    # the task as registered renders nothing: rollouts render the camera the checkpoint reads
    task = with_max_steps(get_task(HIDDEN_GOAL), 50)
    seeing = _final_distances(load_policy(tmp_path / "seeing"), task, EVAL_SEEDS)
    blind = _final_distances(load_policy(tmp_path / "blind"), task, EVAL_SEEDS)
    print(f"final distance to the goal: seeing {seeing.mean():.3f}, blind {blind.mean():.3f}")
    assert blind.mean() > 0.6  # without the image the goal is a guess (goals are uniform in [-1, 1]^2)
    assert seeing.mean() < 0.45
    assert seeing.mean() < 0.55 * blind.mean()
    assert (seeing < 0.3).mean() > (blind < 0.3).mean() + 0.3


class _Recording:
    """A chunk policy that remembers the frames each call was given."""

    def __init__(self, policy) -> None:
        self.policy, self.calls = policy, []

    @property
    def horizon(self) -> int:
        return self.policy.horizon

    @property
    def vision(self) -> VisionConfig:
        return self.policy.vision

    def act(self, observations, prompts, images=None):
        self.calls.append((observations.copy(), {c: f.copy() for c, f in (images or {}).items()}))
        return self.policy.act(observations, prompts, images=images)


@pytest.mark.parametrize("workers", [0, 2])
def test_rollouts_render_the_cameras_a_checkpoint_reads_and_pass_the_current_frames(
    tmp_path: Path, workers: int
) -> None:
    from recap_core.sim.cameras import CameraEnv, CameraSpec, with_cameras
    from recap_core.sim.rollouts import RolloutConfig, run_policy
    from recap_core.sim.tasks import get_task, with_max_steps

    config = PolicyTrainConfig(**QUICK, architecture=FlowPolicyConfig(**NET, horizon=3, images=CAMERA))
    train_policy(_steps_with_frames(), None, config, method="sft", out_dir=tmp_path / "pi")
    policy = _Recording(load_policy(tmp_path / "pi"))
    task = with_max_steps(get_task(HIDDEN_GOAL), 7)
    seeds = list(range(5))
    finished = list(run_policy(policy, task, seeds, RolloutConfig(num_envs=5, workers=workers)))
    assert sorted(r.seed for r in finished) == seeds
    assert all(r.frames["top"].shape == (7, 16, 16, 3) for r in finished)  # recorded as well
    for observations, images in policy.calls:
        assert images["top"].shape == (len(observations), 16, 16, 3)
    # the first call sees every environment just after its reset, in seed order (one worker)
    env = CameraEnv(task.make_env(), CameraSpec(("top",), 16))
    if workers == 0:
        for i, seed in enumerate(seeds):
            env.reset(seed)
            np.testing.assert_array_equal(policy.calls[0][1]["top"][i], env.frames()["top"])
    with pytest.raises(ValueError, match=r"reads cameras \['top'\] at 16x16 px, but the task records"):
        list(run_policy(policy, with_cameras(task, CameraSpec(("top",), 32)), seeds))


def test_pipeline_stages_train_and_label_with_the_cameras_their_architectures_read(
    hidden_goal_store, tmp_path: Path
) -> None:
    """V_pre, the pre-training labels and pi_pre on a store with frames, the steps in memory and streamed
    (one shard: the same samples, so the same weights, frames included)."""
    from safetensors.numpy import load_file

    from recap_core.loop.context import RunContext
    from recap_core.loop.labelling_stages import pretraining_labels
    from recap_core.loop.settings import preset
    from recap_core.loop.training_stages import pretrain_policy, pretrain_value

    store, _ = hidden_goal_store
    images = {"feature_dim": 8, "encoder_width": 4}
    section = {"epochs": 1, "architecture": {"hidden": 32, "depth": 2, "images": images}}
    weights = {}
    for reader in ("memory", "streaming"):
        shutil.copytree(store.uri, tmp_path / reader / "store")
        settings = preset(
            "tiny", tasks=[HIDDEN_GOAL], max_steps=50, training_reader=reader, training_memory_mb=256,
            cameras=["top"], image_size=32, value_pretrain=section, policy_pretrain=section,
        )  # fmt: skip
        ctx = RunContext.for_study(
            settings,
            store_root=str(tmp_path / reader / "store"),
            checkpoints_root=str(tmp_path / reader / "c"),
        )
        pretrain_value(ctx)
        weights[reader] = load_file(str(ctx.checkpoints.pretrained("value") / "model.safetensors"))
        labels = pretraining_labels(ctx)
        assert labels.steps == sum(e["length"] for e in ctx.store.episodes().frame.iter_rows(named=True))
        result = pretrain_policy(ctx)
        assert result.history.gradient_steps > 0
        policy = load_policy(ctx.checkpoints.pretrained("policy"))
        assert policy.vision.cameras == ("top",) and policy.vision.image_size == 32
    assert any(name.startswith("cameras.encoders.top.") for name in weights["memory"])
    for name, tensor in weights["memory"].items():
        np.testing.assert_array_equal(tensor, weights["streaming"][name], err_msg=name)


def test_every_network_reads_the_cameras_the_settings_record_at_their_size() -> None:
    """The camera layout is declared once: a network can no longer read a camera, or a size, other than
    the recorded one (that mismatch used to be accepted by one section and refused by another)."""
    from recap_core.loop.settings import SettingsError, settings_from_mapping

    ok = settings_from_mapping({"tasks": [HIDDEN_GOAL], "cameras": ["top"], "image_size": 32})
    for section in ("value_pretrain", "value_finetune", "policy_pretrain", "policy_finetune"):
        images = getattr(ok, section).architecture.images
        assert (images.cameras, images.image_size) == (("top",), 32), section
    reads = {"architecture": {"images": {"cameras": ["top"], "image_size": 32}}}
    with pytest.raises(SettingsError, match=r"value_pretrain.architecture.images.cameras' .*set 'cameras'"):
        settings_from_mapping({"tasks": [HIDDEN_GOAL], "cameras": ["top"], "value_pretrain": reads})
