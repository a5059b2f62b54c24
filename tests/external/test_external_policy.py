"""An external trainer and its policy as steps of the loop: the stand-in trainer (its own process and
virtual environment) reads the labelled LeRobot dataset from disk, reports through real Dagster Pipes
and writes its own checkpoint format; its stand-in server is started from that environment for the
evaluation and for the next iteration's rollouts, over openpi's protocol."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import STANDIN
from pipeline_helpers import latest_metadata, tiny_recap, with_preset_changes

from assets.evaluation import evaluation
from assets.policy import policy
from pipelines.definitions import ALL_ASSETS
from pipelines.run import run_loop
from recap_core.checkpoints import checkpoint_sha256
from recap_core.checkpoints.external import EXTERNAL_MANIFEST, read_external_manifest
from recap_core.checkpoints.verification import CheckpointIntegrityError
from recap_core.external.training import _folder_sha256
from recap_core.ledger import read_ledger
from recap_core.loop.labelled_dataset import dataset_path
from recap_core.loop.settings import SettingsError, settings_from_mapping
from recap_core.serving.served_policy import ServedPolicy

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TASK = "reach-v3"
POSITIVE = "Advantage: positive"


def _external(python: Path, **changes) -> dict:
    train = [str(python), str(STANDIN / "train.py"), "--dataset", "{dataset}", "--output", "{output}"]
    train += ["--seed", "{seed}", "--settings", "{settings}", "--horizon", "5"]
    serve = [str(python), str(STANDIN / "serve.py"), "--checkpoint", "{checkpoint}", "--port", "{port}"]
    return {
        "name": "standin",
        "train": train,
        "serve": serve,
        "horizon": 5,
        "startup_timeout_s": 60,
        **changes,
    }


@pytest.fixture(scope="module")
def external_loop(tmp_path_factory, standin_python):
    """Pre-training, then iterations 0 and 1 of the tiny preset with pi^k from the stand-in."""
    root = tmp_path_factory.mktemp("external")
    recap = with_preset_changes(tiny_recap(root), root, external_policy=_external(standin_python))
    with dg.instance_for_test(temp_dir=str(root / "dagster")) as instance:
        run_loop(recap, instance, iterations=1, log=lambda _: None)
        yield recap, instance, root, standin_python


def _frames(dataset: Path) -> dict:
    frames = pa.concat_tables(
        pq.read_table(f) for f in sorted((dataset / "data").glob("chunk-*/file-*.parquet"))
    )
    tasks = pq.read_table(dataset / "meta" / "tasks.parquet").to_pydict()
    prompt_of = dict(zip(tasks["task_index"], tasks["task"], strict=True))
    return {
        "count": frames.num_rows,
        "prompts": [prompt_of[i] for i in frames.column("task_index").to_pylist()],
    }


def _standin_servers(root: Path) -> list[str]:
    """Command lines of stand-in servers still running for this test's checkpoints."""
    alive = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "serve.py" in command and str(root) in command:
            alive.append(command)
    return alive


def test_pi_k_is_what_the_external_trainer_wrote_from_the_labelled_dataset(external_loop):
    recap, _, _, python = external_loop
    layout = recap.checkpoint_layout()
    for k in (0, 1):
        pi_k = layout.policy_of(TASK, k)
        manifest = read_external_manifest(pi_k)
        dataset = dataset_path(layout, TASK, k)
        frames = _frames(dataset)
        card = json.loads((pi_k / "policy.json").read_text())
        # the trainer really read the dataset on disk: every frame, and the indicator in the prompts
        assert card["frames_read"] == frames["count"] == manifest["dataset"]["frames"] > 0
        assert card["positive_prompts"] == sum(p.endswith(POSITIVE) for p in frames["prompts"]) > 0
        assert card["study"] == recap.settings().study, "the settings file reached the trainer"
        # lineage: the dataset's version and the value function and thresholds it was labelled with
        assert manifest["dataset"]["path"] == str(dataset)
        assert manifest["dataset"]["sha256"] == _folder_sha256(dataset)
        value = manifest["dataset"]["lineage"]["value_checkpoint"]
        assert value["sha256"] == checkpoint_sha256(layout.value_of(TASK, k))
        assert manifest["exit_code"] == 0 and manifest["command"][0] == str(python)
        assert f"--output {pi_k.parent}" in manifest["command_line"]
        assert set(manifest["files"]) == {"policy.json", "weights.npz"}
        assert checkpoint_sha256(pi_k) == manifest["content_sha256"]
    assert checkpoint_sha256(layout.policy_of(TASK, 0)) != checkpoint_sha256(layout.policy_of(TASK, 1))


def test_the_trainer_logs_and_metrics_reach_the_run_through_pipes(external_loop):
    recap, instance, _, _ = external_loop
    layout = recap.checkpoint_layout()
    meta = latest_metadata(instance, "policy", f"1|{TASK}")
    assert meta["checkpoint_sha256"] == checkpoint_sha256(layout.policy_of(TASK, 1))
    assert meta["external"] == "standin" and meta["exit_code"] == 0
    frames = _frames(dataset_path(layout, TASK, 1))["count"]
    assert meta["trainer/frames_read"] == frames and meta["dataset_frames"] == frames
    assert meta["trainer_metric_reports"] == 11  # steps 1, 20, 40, ..., 200
    assert meta["epochs"] == 11 and meta["final_train_loss"] > 0
    record = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("policy"), asset_partitions=[f"1|{TASK}"]), limit=1
    ).records[0]
    messages = [e.user_message for e in instance.all_logs(record.run_id)]
    assert any(m.startswith("standin: ") and "frames kept" in m for m in messages), "pipes.log.info"
    assert any(m.startswith("[standin] step 200 loss") for m in messages), "the trainer's streamed output"


def test_the_external_policy_is_evaluated_and_collects_through_its_own_server(external_loop):
    recap, _, root, _ = external_loop
    layout = recap.checkpoint_layout()
    rows = read_ledger(recap.ledger()).filter(task=TASK, method="recap")
    by_iteration = {row["iteration"]: row for row in rows.iter_rows(named=True)}
    for k in (0, 1):
        row = by_iteration[k]
        assert row["policy_sha256"] == checkpoint_sha256(layout.policy_of(TASK, k))
        assert row["episodes"] == recap.settings().eval_episodes and row["beta"] == 1.0
    rollouts = recap.store().episodes(task=TASK).frame.filter(iteration=1)
    pi_0 = checkpoint_sha256(layout.policy_of(TASK, 0))[:12]
    assert rollouts.height == recap.settings().rollouts_per_iteration
    assert all(pi_0 in label for label in rollouts["collected_by"].to_list())
    assert not _standin_servers(root), "every server the evaluations and the collection started was stopped"


def test_an_edited_external_checkpoint_is_refused_naming_the_file(external_loop, tmp_path):
    recap, _, _, _ = external_loop
    copy = tmp_path / "pi"
    shutil.copytree(recap.checkpoint_layout().policy_of(TASK, 1), copy)
    checkpoint_sha256(copy)
    weights = copy / "weights.npz"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointIntegrityError, match=r"weights\.npz: sha256 .* does not match"):
        checkpoint_sha256(copy)
    weights.unlink()
    with pytest.raises(CheckpointIntegrityError, match=rf"weights\.npz: listed in {EXTERNAL_MANIFEST}"):
        checkpoint_sha256(copy)
    with pytest.raises(ValueError, match="trained by an external trainer"):
        ServedPolicy.load(recap.checkpoint_layout().policy_of(TASK, 1))


def test_a_failing_trainer_is_named_with_its_last_lines_and_publishes_nothing(external_loop):
    recap, instance, root, python = external_loop
    failing = _external(python)
    failing["train"] = [*failing["train"], "--fail-with", "3"]
    changed = with_preset_changes(recap, root, external_policy=failing)
    slot = recap.checkpoint_layout().policy_of(TASK, 1)
    current, versions = slot.resolve(), sorted(p.name for p in slot.parent.iterdir())
    result = dg.materialize(
        ALL_ASSETS,
        selection=[policy],
        instance=instance,
        resources={"recap": changed},
        partition_key=f"1|{TASK}",
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.event_specific_data.error)
    assert "external trainer 'standin'" in message and "--fail-with 3" in message
    assert "exited with 3" in message and "failing on purpose after reading the dataset" in message
    assert slot.resolve() == current and sorted(p.name for p in slot.parent.iterdir()) == versions


def test_a_server_that_does_not_start_is_named_with_its_last_lines(external_loop):
    recap, instance, root, python = external_loop
    broken = _external(python)
    broken["serve"] = [*broken["serve"], "--no-such-flag"]
    changed = with_preset_changes(recap, root, external_policy=broken)
    result = dg.materialize(
        ALL_ASSETS,
        selection=[evaluation],
        instance=instance,
        resources={"recap": changed},
        partition_key=f"1|{TASK}",
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.event_specific_data.error)
    assert "the external policy server" in message and "exited with 2" in message
    assert "unrecognized arguments: --no-such-flag" in message
    assert not _standin_servers(root)


@pytest.mark.parametrize(
    ("external", "refusal"),
    [
        (
            {"train": ["t", "{output}", "{datset}"], "serve": ["s", "{port}"]},
            r"unknown placeholder \{datset\}",
        ),
        ({"train": ["t", "{output}"]}, "external_policy.serve is empty"),
        ({"train": ["t", "{dataset}"], "serve": ["s", "{port}"]}, r"never names \{output\}"),
        ({"train": ["t", "{output}"], "serve": ["s", "{checkpoint}"]}, r"never names \{port\}"),
        ({"serve": ["s", "{port}"]}, "external_policy.train is empty"),
    ],
)
def test_external_commands_are_checked_when_the_settings_are_read(external, refusal):
    with pytest.raises(SettingsError, match=refusal):
        settings_from_mapping({"external_policy": external})


def test_the_commands_run_outside_this_projects_virtual_environment():
    from recap_core.external.process import command_environment

    env = command_environment({"EXTRA": "1"})
    assert "VIRTUAL_ENV" not in env and env["EXTRA"] == "1"
    ours = os.environ.get("VIRTUAL_ENV")
    if ours:
        assert str(Path(ours) / "bin") not in env["PATH"].split(os.pathsep)
