"""The labelled LeRobot v3.0 dataset of (task, iteration): materialised with Dagster after the real
training and labelling stages ran on a small store, then read back as an external trainer would, with
pyarrow only, and by `recap ingest lerobot`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pipeline_helpers import latest_metadata, tiny_recap
from typer.testing import CliRunner

from assets.iteration import PARTITIONS
from assets.labelled_dataset import DATASETS_GROUP, labelled_dataset
from assets.partitions import register_partitions
from pipelines.cli.main import app
from pipelines.definitions import ALL_ASSETS, defs
from recap_core.checkpoints import checkpoint_sha256
from recap_core.checkpoints.layout import POLICY
from recap_core.episode import Episode, stable_episode_id
from recap_core.lerobot_v3.frames import png_bytes
from recap_core.loop.data import task_episodes
from recap_core.loop.labelled_dataset import dataset_path, write_labelled_dataset
from recap_core.loop.labelling_stages import iteration_advantages, iteration_labels, pretraining_labels
from recap_core.loop.labels import partition_filter
from recap_core.loop.training_stages import (
    pretrain_policy,
    pretrain_value,
    train_iteration_policy,
    train_iteration_value,
)
from recap_core.store import EpisodeStore
from schemas.derived import ADVANTAGES, INDICATORS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TASK = "reach-v3"
PROMPT = "reach the goal"
THREE_PROMPTS = [f"{PROMPT}\nAdvantage: positive", f"{PROMPT}\nAdvantage: negative", PROMPT]


def _episode(index: int, kind: str, iteration: int, length: int, success: bool) -> Episode:
    rng = np.random.default_rng(index)
    corrections = None
    if kind == "intervention":  # the supervisor takes over for the middle third
        corrections = (np.arange(length) >= length // 3) & (np.arange(length) < 2 * length // 3)
    pixels = rng.integers(0, 256, size=(length, 16, 16, 3), dtype=np.uint8)
    return Episode(
        episode_id=stable_episode_id("labelled-dataset-test", index),
        task=TASK,
        prompt=PROMPT,
        kind=kind,
        success=success,
        observations=rng.normal(size=(length, 6)),
        actions=rng.uniform(-1, 1, size=(length, 4)),
        is_correction=corrections,
        iteration=iteration,
        images={"front": [png_bytes(p) for p in pixels]},
    )


def _episodes() -> list[Episode]:
    """Demos (iteration 0), then iteration 1's rollouts: autonomous (half time out) and interventions."""
    demos = [_episode(i, "demo", 0, 30 + i, True) for i in range(6)]
    rollouts = [_episode(10 + i, "autonomous", 1, 40 if i % 2 else 60, bool(i % 2)) for i in range(6)]
    return demos + rollouts + [_episode(20 + i, "intervention", 1, 45, True) for i in range(4)]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A study whose pre-training, V^1, advantages, indicators and pi^1 were made by the real stages."""
    root = tmp_path_factory.mktemp("labelled")
    recap = tiny_recap(root)
    ctx = recap.run_context()
    ctx.store.add_episodes(_episodes())
    pretrain_value(ctx)
    pretraining_labels(ctx)
    pretrain_policy(ctx)
    train_iteration_value(ctx, TASK, 1)
    iteration_advantages(ctx, TASK, 1)
    iteration_labels(ctx, TASK, 1)
    train_iteration_policy(ctx, TASK, 1)
    with dg.instance_for_test(temp_dir=str(root / "dagster")) as instance:
        register_partitions(instance, [TASK], [0, 1])
        yield recap, instance


def _materialise(study, iteration: int = 1, **config) -> dg.ExecuteInProcessResult:
    recap, instance = study
    return dg.materialize(
        ALL_ASSETS,
        selection=[labelled_dataset],
        instance=instance,
        resources={"recap": recap},
        partition_key=f"{iteration}|{TASK}",
        run_config={"ops": {"labelled_dataset": {"config": config}}} if config else None,
    )


def _read(root: Path) -> dict:
    """The dataset as a trainer sees it: frames (with each frame's prompt and episode id), the tasks,
    meta/info.json. pyarrow only."""
    frames = pa.concat_tables(
        pq.read_table(f) for f in sorted((root / "data").glob("chunk-*/file-*.parquet"))
    )
    frames = frames.to_pydict()
    tasks = pq.read_table(root / "meta" / "tasks.parquet").to_pydict()
    episodes = pq.read_table(root / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pydict()
    prompt_of = dict(zip(tasks["task_index"], tasks["task"], strict=True))
    episode_id = dict(zip(episodes["episode_index"], episodes["recap/episode_id"], strict=True))
    frames["prompt"] = [prompt_of[i] for i in frames["task_index"]]
    frames["episode_id"] = [episode_id[i] for i in frames["episode_index"]]
    info = json.loads((root / "meta" / "info.json").read_text())
    return {"frames": frames, "tasks": tasks["task"], "episodes": episodes, "info": info}


def _hidden(folder: Path) -> list[str]:
    """Staging or retired folders beside the datasets (a write that did not clean up after itself)."""
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def _keyed(frames: dict, column: str) -> dict[tuple[str, int], object]:
    return dict(
        zip(zip(frames["episode_id"], frames["frame_index"], strict=True), frames[column], strict=True)
    )


def test_the_dataset_is_what_pi_k_trains_on_with_the_indicators_tables_labels(study):
    recap, instance = study
    assert _materialise(study).success
    layout, store = recap.checkpoint_layout(), recap.store()
    path = dataset_path(layout, TASK, 1)
    assert path == layout.root / "datasets" / TASK / "iteration-001"
    data = _read(path)
    frames, recorded = data["frames"], data["info"]["recap"]

    # The frames are the policy stage's selection: pi^1's own lineage says how many, at which versions.
    pi_lineage = layout.read_lineage(layout.iteration(POLICY, TASK, 1))
    assert len(frames["index"]) == pi_lineage["steps"] and len(data["episodes"]["episode_index"]) == 16
    assert len(data["episodes"]["episode_index"]) == pi_lineage["episodes"]
    selection = task_episodes(store, TASK, 1, pi_lineage["versions"])
    assert sorted(data["episodes"]["recap/episode_id"]) == sorted(selection["episode_id"].to_list())
    versions = recorded["table_versions"]
    read = ("episodes", "steps", INDICATORS)
    assert {k: versions[k] for k in read} == {k: pi_lineage["versions"][k] for k in read}, "what pi^1 read"
    value_sha = checkpoint_sha256(layout.value_of(TASK, 1))
    assert recorded["value_checkpoint"]["sha256"] == value_sha
    assert recorded["thresholds"]["value_checkpoint_sha256"] == value_sha
    assert recorded["thresholds"]["target_fraction"] == pytest.approx(0.4)

    # Per frame: the indicators and advantages tables' rows, read at the versions recorded.
    where = partition_filter(TASK, 1)
    table = store.read_derived(INDICATORS, filter=where, version=versions[INDICATORS])
    indicator = {(e, t): i for e, t, i in table.select("episode_id", "t", "indicator").iter_rows()}
    assert _keyed(frames, "indicator") == indicator
    advantages = store.read_derived(ADVANTAGES, filter=where, version=versions[ADVANTAGES])
    for column in ("value", "advantage"):
        expected = {(e, t): v for e, t, v in advantages.select("episode_id", "t", column).iter_rows()}
        got = _keyed(frames, column)
        assert got.keys() == expected.keys()
        assert np.allclose([got[k] for k in expected], list(expected.values()), rtol=0, atol=1e-6)
    assert any(frames["indicator"]) and not all(frames["indicator"]), "iteration 1 has both labels"

    # Each frame's prompt says its indicator, or is the plain prompt; a correction's says positive.
    assert data["tasks"] == THREE_PROMPTS
    suffix = {True: "\nAdvantage: positive", False: "\nAdvantage: negative"}
    for prompt, label in zip(frames["prompt"], frames["indicator"], strict=True):
        assert prompt in (PROMPT, PROMPT + suffix[label])
    corrections = [i for i, c in enumerate(frames["is_intervention"]) if c]
    assert len(corrections) == 4 * 15
    assert all(frames["indicator"][i] for i in corrections), "corrections are forced positive"
    assert {frames["prompt"][i] for i in corrections} == {THREE_PROMPTS[0], PROMPT}

    metadata = latest_metadata(instance, "labelled_dataset", f"1|{TASK}")
    counts = {name: frames["prompt"].count(prompt) for name, prompt in zip(("positive", "negative", "plain"),
              THREE_PROMPTS, strict=True)}  # fmt: skip
    assert {name: metadata[f"{name}_frames"] for name in counts} == counts == recorded["frames"]
    assert (metadata["frames"], metadata["episodes"]) == (pi_lineage["steps"], pi_lineage["episodes"])
    assert metadata["value_checkpoint_sha256"] == value_sha and metadata["path"] == str(path)
    assert metadata["table_versions"] == versions


def test_the_indicator_is_dropped_deterministically_at_the_policys_share_and_seed(study):
    recap, instance = study
    assert _materialise(study).success
    path = dataset_path(recap.checkpoint_layout(), TASK, 1)
    first = _read(path)
    dropout = first["info"]["recap"]["indicator_dropout"]
    settings = recap.settings()
    assert dropout["share"] == settings.policy_finetune.indicator_dropout == 0.3
    assert dropout["seed"] == settings.seed + 1, "pi^1's own seed"
    metadata = latest_metadata(instance, "labelled_dataset", f"1|{TASK}")
    assert (metadata["indicator_dropout_share"], metadata["indicator_dropout_seed"]) == (0.3, dropout["seed"])

    frames = first["frames"]
    plain = [prompt == PROMPT for prompt in frames["prompt"]]
    assert abs(sum(plain) / len(plain) - 0.3) < 0.06
    # the rule as recorded, recomputed here from the frame's key alone
    for episode, t, is_plain in zip(frames["episode_id"], frames["frame_index"], plain, strict=True):
        digest = hashlib.blake2b(f"{episode}/{t}/{dropout['seed']}".encode(), digest_size=8).digest()
        assert (int.from_bytes(digest, "big") / 2**64 < 0.3) == is_plain

    assert _materialise(study).success
    second = _read(path)
    assert second["frames"]["task_index"] == frames["task_index"]
    assert second["frames"]["episode_id"] == frames["episode_id"]
    versions = [
        record.asset_materialization.tags["dagster/data_version"]
        for record in instance.fetch_materializations(dg.AssetKey("labelled_dataset"), limit=2).records
    ]
    assert len(versions) == 2 and versions[0] == versions[1], "the same inputs: the same data version"
    assert not _hidden(path.parent), "no staging or retired folder left"


def test_recap_ingest_lerobot_reads_it_back_as_the_stored_episodes(study, tmp_path):
    recap, _ = study
    assert _materialise(study).success
    path = dataset_path(recap.checkpoint_layout(), TASK, 1)
    target = tmp_path / "imported"
    result = CliRunner().invoke(app, ["ingest", "lerobot", str(path), "--store", str(target)])
    assert result.exit_code == 0, result.output
    imported, source = EpisodeStore(target), recap.store()
    episodes = imported.episodes().frame
    assert episodes.height == 16 and set(episodes["prompt"].to_list()) == {PROMPT}, (
        "the task's, not a frame's"
    )
    original_id = _read(path)["episodes"]["recap/episode_id"]  # by episode_index
    for row in episodes.iter_rows(named=True):
        original = original_id[int(row["source"].rsplit("#", 1)[1])]
        was = source.episodes().frame.filter(pl.col("episode_id") == original).row(0, named=True)
        assert (row["kind"], row["success"], row["length"]) == (was["kind"], was["success"], was["length"])
        now, before = imported.episode_steps(row["episode_id"]), source.episode_steps(original)
        assert now["observation"].to_list() == before["observation"].to_list()
        assert now["is_correction"].to_list() == before["is_correction"].to_list()
        assert imported.episode_images(row["episode_id"], "front") == source.episode_images(original, "front")


def test_a_failed_rewrite_leaves_the_previous_dataset_in_place(study):
    recap, _ = study
    assert _materialise(study).success
    path = dataset_path(recap.checkpoint_layout(), TASK, 1)
    info = (path / "meta" / "info.json").read_bytes()
    with pytest.raises(ValueError, match="fps must be positive"):
        write_labelled_dataset(recap.run_context(), TASK, 1, fps=-1.0)
    assert (path / "meta" / "info.json").read_bytes() == info
    assert not _hidden(path.parent)


def test_cameras_can_be_videos_and_rematerialising_replaces_the_images(study):
    recap, _ = study
    assert _materialise(study).success
    path = dataset_path(recap.checkpoint_layout(), TASK, 1)
    data_file = path / "data" / "chunk-000" / "file-000.parquet"
    assert "observation.images.front" in pq.read_schema(data_file).names
    images = _read(path)
    assert _materialise(study, video=True, fps=10.0).success
    info = json.loads((path / "meta" / "info.json").read_text())
    assert info["features"]["observation.images.front"]["dtype"] == "video" and info["fps"] == 10.0
    assert "observation.images.front" not in pq.read_schema(data_file).names
    assert (path / "videos" / "observation.images.front" / "chunk-000" / "file-000.mp4").is_file()
    videos = _read(path)
    for column in ("task_index", "indicator", "episode_id"):
        assert videos["frames"][column] == images["frames"][column]


def test_iteration_0_is_every_frame_positive_or_plain(study):
    recap, _ = study
    ctx = recap.run_context()
    train_iteration_value(ctx, TASK, 0)
    iteration_advantages(ctx, TASK, 0)
    iteration_labels(ctx, TASK, 0)
    assert _materialise(study, iteration=0).success
    data = _read(dataset_path(recap.checkpoint_layout(), TASK, 0))
    assert data["tasks"] == THREE_PROMPTS, "the negative prompt is listed though no frame uses it"
    assert set(data["frames"]["prompt"]) == {THREE_PROMPTS[0], PROMPT} and all(data["frames"]["indicator"])
    assert set(data["frames"]["episode_id"]) == set(
        task_episodes(ctx.store, TASK, 0, ctx.store.versions())["episode_id"]
    )
    assert data["info"]["recap"]["mode"] == "sft" and data["info"]["recap"]["frames"]["negative"] == 0


def test_the_dataset_is_on_demand_not_part_of_an_iteration_job():
    (spec,) = labelled_dataset.specs
    assert spec.group_name == DATASETS_GROUP != "recap_iteration"
    assert [dep.asset_key for dep in spec.deps] == [dg.AssetKey("indicators")]
    assert spec.partitions_def == PARTITIONS
    for job in ("recap_iteration", "recap_iteration_with_baselines"):
        assert "labelled_dataset" not in defs.resolve_job_def(job).graph.node_names()
    assert "indicators" in defs.resolve_job_def("recap_iteration").graph.node_names()
