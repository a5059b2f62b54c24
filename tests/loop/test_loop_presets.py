"""Presets are YAML files read by one validating reader, and the named ones keep their values: each is
compared with a snapshot of every preset's settings taken before the presets moved into data files
(tests/loop/snapshots/presets.json, in the layout of that time)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from recap_core.external.config import ExternalPolicyConfig
from recap_core.loop.settings import SettingsError, preset
from recap_core.models.vision import VisionConfig
from recap_core.presets import preset_names
from recap_core.sim.tasks import get_task

SNAPSHOT = Path(__file__).parent / "snapshots" / "presets.json"
# Camera inputs were added after the snapshot: every preset's networks are state-only (no cameras).
STATE_ONLY = VisionConfig().to_dict()

# The snapshot's training configs named the architecture field by field; it is now one nested config,
# whose sizes are filled in when the network is built and whose value support moved out of the reward.
VALUE_NETWORK = (
    "n_bins",
    "backbone",
    "hidden",
    "depth",
    "heads",
    "prompt_dim",
    "prompt_buckets",
    "time_aware",
)
POLICY_NETWORK = (
    "horizon",
    "backbone",
    "hidden",
    "depth",
    "heads",
    "prompt_dim",
    "prompt_buckets",
    "flow_steps",
)


def _nested_value(old: dict) -> dict:
    new = {key: value for key, value in old.items() if key not in VALUE_NETWORK}
    reward = dict(old["reward"])
    support = {"value_min": reward.pop("value_min"), "value_max": reward.pop("value_max")}
    architecture = {"obs_dim": 0, **{key: old[key] for key in VALUE_NETWORK}, **support, "images": STATE_ONLY}
    return {**new, "reward": reward, "architecture": architecture}


def _nested_policy(old: dict) -> dict:
    new = {key: value for key, value in old.items() if key not in POLICY_NETWORK}
    fixed = {"obs_dim": 0, "action_dim": 0, "time_dim": 32, "indicator_dim": 16, "conditioned": True}
    networks = {key: old[key] for key in POLICY_NETWORK}
    return {**new, "architecture": {**fixed, **networks, "images": STATE_ONLY}}


def _expected(name: str) -> dict:
    old = json.loads(SNAPSHOT.read_text())[name]
    # settings added after the snapshot, at their defaults
    added = {
        "cameras": [],
        "image_size": 64,
        "camera_quality": {},
        "c_fail": None,
        "deploy_margin": 0.05,
        "external_policy": json.loads(json.dumps(dataclasses.asdict(ExternalPolicyConfig()))),
        "final_eval_episodes": 0,
        "replicates": 1,
        "advantage_folds": 1,
    }
    # the studies' power (per-episode paired comparisons): five replicates, 100 final-iteration episodes
    if name.startswith("study-"):
        added |= {"final_eval_episodes": 100, "replicates": 5}
    old = {**old, **added}
    for key in ("value_pretrain", "value_finetune"):
        old[key] = _nested_value(old[key])
    for key in ("policy_pretrain", "policy_finetune"):
        old[key] = _nested_policy(old[key])
    return old


@pytest.mark.parametrize("name", sorted(json.loads(SNAPSHOT.read_text())))
def test_every_preset_keeps_its_values(name: str) -> None:
    assert preset(name).to_dict() == _expected(name)


PRESETS_AFTER_THE_SNAPSHOT = {"pixels"}


def test_the_snapshot_covers_every_preset() -> None:
    assert sorted(set(preset_names()) - PRESETS_AFTER_THE_SNAPSHOT) == sorted(
        json.loads(SNAPSHOT.read_text())
    )


def test_the_pixels_preset_learns_from_the_camera_it_records() -> None:
    pixels = preset("pixels")
    (task,) = pixels.tasks
    assert get_task(task).make_env().obs_dim == 8, "proprioception only: the goal is in the camera alone"
    for section in ("value_pretrain", "value_finetune", "policy_pretrain", "policy_finetune"):
        images = getattr(pixels, section).architecture.images
        assert images.cameras == pixels.cameras and images.image_size == pixels.image_size, section


def test_a_preset_file_by_path_changes_only_what_it_names(tmp_path: Path) -> None:
    file = tmp_path / "my-study.yaml"
    file.write_text(
        "tasks: [push-v3]\nbeta: 2\nfinetune_positive_fraction_overrides: {push-v3: 0.1}\n"
        "policy_finetune:\n  epochs: 3\npolicy_pretrain:\n  architecture: {horizon: 5}\n"
        "demo: {speed_range: [0.7, 0.9]}\n"
    )
    settings = preset(str(file))
    default = preset("full")
    assert settings.tasks == ("push-v3",) and settings.beta == 2.0 and isinstance(settings.beta, float)
    assert settings.positive_fraction("push-v3") == 0.1
    finetune = settings.policy_finetune
    assert (finetune.epochs, finetune.weights, finetune.architecture.horizon) == (3, "last", 5)
    assert finetune.architecture.hidden == default.policy_finetune.architecture.hidden
    assert settings.demo.speed_range == (0.7, 0.9)
    assert settings.lookahead == default.lookahead
    assert preset("tiny", tasks=["push-v3"], eval_episodes=7).eval_episodes == 7


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("eval_episode: 3", r"unknown setting 'eval_episode'; LoopSettings has tasks, "),
        (
            "value_pretrain: {architecture: {hiden: 64}}",
            r"unknown setting 'value_pretrain.architecture.hiden'",
        ),
        (
            "policy_pretrain: {architecture: {obs_dim: 4}}",
            r"unknown setting 'policy_pretrain.architecture.obs_dim'",
        ),
        ("eval_episodes: fifty", r"setting 'eval_episodes' must be an integer, got 'fifty'"),
        ("tasks: push-v3", r"setting 'tasks' must be a list, got 'push-v3'"),
        ("demo: {speed_range: [0.5]}", r"setting 'demo.speed_range' must be a list of 2 values"),
        ("value_finetune: {progress: 1}", r"setting 'value_finetune.progress' must be true or false"),
        ("eval_episodes: 0", r"eval_episodes must be >= 1, got 0"),
        ("policy_finetune: {weights: best}", r"weights must be one of"),
        ("- tasks", r"expected a mapping of settings"),
    ],
)
def test_a_bad_preset_file_is_refused_naming_the_setting(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(text + "\n")
    with pytest.raises(SettingsError, match=message):
        preset(str(file))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # each used to pass validation and then be ignored (replaced by the stage or by another setting)
        ("value_pretrain: {reward: {c_fail: 10}}", r"'value_pretrain.reward' .*derived from 'c_fail'"),
        ("policy_finetune: {seed: 3}", r"'policy_finetune.seed' .*derived from 'seed'"),
        (
            "value_finetune: {architecture: {hidden: 64}}",
            r"'value_finetune.architecture' .*declare it once, in value_pretrain.architecture",
        ),
        (
            "policy_pretrain: {architecture: {images: {cameras: [topview]}}}",
            r"'policy_pretrain.architecture.images.cameras' .*reads the recorded cameras: set 'cameras'",
        ),
    ],
)
def test_a_setting_the_code_would_not_honour_is_refused(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "ignored.yaml"
    file.write_text(text + "\n")
    with pytest.raises(SettingsError, match=message):
        preset(str(file))


def test_each_fact_is_declared_once_and_the_rest_follows_from_it(tmp_path: Path) -> None:
    """c_fail reaches every value function; the finetunes keep the pre-trained architecture; every
    network reads the recorded cameras; a recorded run's settings rebuild exactly."""
    from recap_core.loop.settings import settings_from_record

    file = tmp_path / "once.yaml"
    file.write_text(
        "c_fail: 20\ncameras: [topview]\nimage_size: 32\n"
        "value_pretrain: {architecture: {hidden: 32}}\npolicy_pretrain: {architecture: {horizon: 4}}\n"
    )
    settings = preset(str(file))
    assert settings.c_fail == 20.0
    assert settings.value_finetune.architecture == settings.value_pretrain.architecture
    assert settings.value_finetune.architecture.hidden == 32
    assert settings.policy_finetune.architecture.horizon == 4
    for section in ("value_pretrain", "value_finetune", "policy_pretrain", "policy_finetune"):
        images = getattr(settings, section).architecture.images
        assert (images.cameras, images.image_size) == (("topview",), 32), section
    assert settings_from_record(settings.to_dict()) == settings
    assert settings_from_record(preset("tiny").to_dict()) == preset("tiny")


def test_an_unknown_preset_names_the_presets() -> None:
    with pytest.raises(
        KeyError, match="unknown preset 'tiyn'; presets: tiny, fast, full, study-fast, study-full"
    ):
        preset("tiyn")


def test_the_resource_and_the_cli_read_a_preset_file_and_their_fields_by_the_same_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assets.resources import RecapResource
    from pipelines.cli.pipeline import _resource
    from recap_core.study.experiment import ExperimentPlan

    (tmp_path / "mine.yaml").write_text("eval_episodes: 7\n")
    monkeypatch.chdir(tmp_path)
    recap = _resource("mine.yaml", "push-v3", training_reader="streaming")
    assert recap.preset == str(tmp_path / "mine.yaml")  # absolute: a run may start elsewhere
    settings = recap.settings()
    assert (settings.eval_episodes, settings.tasks, settings.training_reader) == (
        7,
        ("push-v3",),
        "streaming",
    )
    assert ExperimentPlan.from_settings(recap.preset, settings, 1).name == "mine-k1-push-v3"
    with pytest.raises(SettingsError, match="training_reader must be one of"):
        RecapResource(preset="tiny", training_reader="stremaing").settings()
