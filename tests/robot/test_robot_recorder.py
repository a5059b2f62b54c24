"""The robot recorder: a policy drives (chunks executed open-loop), an operator takes over and hands back,
episodes get a success label and land in the drop folder as whole LeRobot v3.0 batches, which the fleet
ingests with kinds, successes and corrections intact. The robot is the example Meta-World adapter, the
policy its scripted expert (or zeros); a served policy is tested with the server."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from recap_core.lerobot_v3.episode import RecordedEpisode
from recap_core.lerobot_v3.frames import png_bytes
from recap_core.loop.fleet import ingest_pending
from recap_core.robot.batches import DropFolderWriter
from recap_core.robot.examples.metaworld import ExpertPolicy, MetaWorldRobot, station
from recap_core.robot.interfaces import EpisodeOutcome
from recap_core.robot.operator_console import ask_on_terminal
from recap_core.robot.policy import ChunkSource
from recap_core.robot.recorder import RecordingSettings, record_episode, record_episodes
from recap_core.store import EpisodeStore

PROMPT = "reach the goal position with the gripper"
DATASET_NAME = re.compile(r"^sim-reach-v3-\d{8}T\d{6}Z-[0-9a-f]{8}$")
CLIENT_MODULES = [
    "recap_core.robot",
    "recap_core.robot.interfaces",
    "recap_core.robot.policy",
    "recap_core.robot.recorder",
    "recap_core.robot.batches",
    "recap_core.robot.operator_console",
    "recap_core.robot.record",
    "recap_core.lerobot_v3.writer",
]


def test_the_recorder_and_the_writer_import_without_torch_dagster_lance_or_polars():
    imports = "; ".join(f"import {module}" for module in CLIENT_MODULES)
    heavy = ["torch", "dagster", "lance", "polars", "recap_core.sim", "recap_core.store", "openpi_client"]
    check = f"{imports}; import sys; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"imported at module level: {done.stdout}"


def test_recorded_batches_reach_the_store_through_the_fleet_intact(tmp_path):
    setup = station(camera="corner", image_size="32", takeover_every="2", max_steps="45")
    chunks = ChunkSource(ExpertPolicy("reach-v3", horizon=10), PROMPT)
    settings = RecordingSettings("reach-v3", PROMPT, steps_per_chunk=4, max_steps=45)
    drop = tmp_path / "drop"
    recorded = []
    with DropFolderWriter(drop, setup.name, fps=setup.fps, batch_size=2) as writer:
        for episode in record_episodes(setup, chunks, settings, 3):
            recorded.append(episode)
            writer.add(episode)
            assert len(writer.written) == len(recorded) // 2, "a batch is written as soon as it is full"
    names = sorted(p.name for p in drop.iterdir())
    assert len(names) == 2 and all(DATASET_NAME.match(name) for name in names), names

    assert [e.kind for e in recorded] == ["intervention", "autonomous", "intervention"]
    assert [e.success for e in recorded] == [True, False, True]  # the second runs out of its 45 steps
    np.testing.assert_array_equal(np.flatnonzero(recorded[0].is_intervention), np.arange(5, 15))
    autonomous = recorded[1].action
    assert all((autonomous[i : i + 4] == autonomous[i]).all() for i in range(0, 44, 4)), "chunks of 4"
    assert not (autonomous[4] == autonomous[3]).all(), "a new chunk after 4 steps"
    after_handback = recorded[0].action[15:19]
    assert (after_handback == after_handback[0]).all() and not (
        after_handback[0] == recorded[0].action[14]
    ).all()

    store = EpisodeStore(tmp_path / "lance")
    assert sorted(ingest_pending(store, drop, "reach-v3", 1).values()) == [1, 2]
    stored = store.episodes(task="reach-v3").frame
    assert stored.height == 3 and set(stored["iteration"]) == {1}
    for episode in recorded:
        row = stored.filter(stored["length"] == episode.length).row(0, named=True)
        steps = store.episode_steps(row["episode_id"])
        np.testing.assert_array_equal(np.asarray(steps["observation"].to_list(), np.float32), episode.state)
        np.testing.assert_array_equal(np.asarray(steps["action"].to_list(), np.float32), episode.action)
        assert steps["is_correction"].to_list() == episode.is_intervention.tolist()
        assert (row["kind"], row["success"], row["prompt"]) == (episode.kind, episode.success, PROMPT)
        assert row["collected_by"] == "scripted-expert:reach-v3"
        frames = store.episode_images(row["episode_id"], "corner")
        assert frames == list(episode.images["corner"]) and frames[0].startswith(b"\x89PNG")
    assert ingest_pending(store, drop, "reach-v3", 2) == {}, "each batch is ingested once"


def test_the_command_line_records_into_the_drop_folder(tmp_path):
    drop = tmp_path / "drop"
    command = [
        sys.executable, "-m", "recap_core.robot.record",
        "--robot", "recap_core.robot.examples.metaworld:station", "--robot-arg", "takeover_every=2",
        "--policy", "recap_core.robot.examples.metaworld:zero_policy",
        "--task", "reach-v3", "--prompt", PROMPT, "--episodes", "3", "--batch-size", "2",
        "--drop-folder", str(drop), "--max-steps", "20", "--steps-per-chunk", "5",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [d["episodes"] for d in report["datasets"]] == [2, 1] and report["episodes"] == 3
    assert report["datasets"][0]["kinds"] == ["intervention", "autonomous"]
    assert "episode 3/3: 20 steps, 10 by the operator, failure" in done.stderr
    store = EpisodeStore(tmp_path / "lance")
    assert sum(ingest_pending(store, drop, "reach-v3", 1).values()) == 3
    stored = store.episodes(task="reach-v3").frame
    assert sorted(stored["kind"]) == ["autonomous", "intervention", "intervention"]
    assert not stored["success"].any(), "zero actions never reach the goal"
    # the served metadata names the checkpoint when the server sends no policy_label
    assert set(stored["collected_by"]) == {"policy:iteration-000@000000000000#deployment-1"}
    assert int(store.load_steps(task="reach-v3").is_correction.sum()) == 20


class _SilentRobot(MetaWorldRobot):
    """A robot that cannot tell success: ``step`` returns the bare observation."""

    def step(self, action):
        return super().step(action).observation


def test_the_success_label_comes_from_the_label_the_hook_or_the_robot_else_it_is_refused():
    silent = _SilentRobot("reach-v3")
    chunks = ChunkSource(ExpertPolicy("reach-v3"), PROMPT)
    settings = RecordingSettings("reach-v3", PROMPT, max_steps=3)
    with pytest.raises(ValueError, match="the episode has no success label"):
        record_episode(silent, chunks, settings)
    assert record_episode(silent, chunks, settings, success=True).success is True
    said: list[EpisodeOutcome] = []
    labelled = record_episode(silent, chunks, settings, label_success=lambda o: said.append(o) or False)
    assert labelled.success is False and labelled.kind == "autonomous"
    assert (said[0].steps, said[0].robot_success, said[0].ended_by_robot) == (3, None, False)

    outcome = EpisodeOutcome(40, 0, True, True, {})
    assert ask_on_terminal(outcome, io.StringIO("n\n"), io.StringIO()) is False
    assert ask_on_terminal(outcome, io.StringIO("\n"), io.StringIO()) is True, "Enter takes the robot's"
    asked = io.StringIO()
    assert ask_on_terminal(EpisodeOutcome(40, 0, None, False, {}), io.StringIO("maybe\ny\n"), asked) is True
    assert asked.getvalue().count("success? [y/n]") == 2
    with pytest.raises(ValueError, match="stdin is closed"):
        ask_on_terminal(EpisodeOutcome(40, 0, None, False, {}), io.StringIO(""), io.StringIO())


def _episode(length: int, size: int | None) -> RecordedEpisode:
    """An episode with a ``size`` x ``size + 1`` camera (None: no camera)."""
    frames = [png_bytes(np.full((size, size + 1, 3), t, np.uint8)) for t in range(length)] if size else []
    return RecordedEpisode(
        state=np.zeros((length, 3)),
        action=np.ones((length, 2)),
        prompt=PROMPT,
        task="reach-v3",
        kind="autonomous",
        success=True,
        images={"wrist": frames} if size else {},
    )


def test_a_batch_that_fails_to_write_leaves_nothing_and_a_new_shape_starts_a_new_batch(tmp_path):
    drop = tmp_path / "drop"
    writer = DropFolderWriter(drop, "arm-7", fps=10, batch_size=5, video=True)
    writer.add(_episode(4, 31))  # 31x32 frames cannot be yuv420p video
    with pytest.raises(ValueError, match="cannot be stored as yuv420p video"):
        writer.flush()
    assert list(drop.iterdir()) == [], "no dataset and no staging folder left behind"

    writer = DropFolderWriter(drop, "arm-7", fps=10, batch_size=5)
    assert writer.add(_episode(4, None)) is None
    first = writer.add(_episode(3, 8))  # a camera appears: the camera-less batch is written first
    assert first is not None and first.episodes == 1 and first.cameras == []
    writer.close()
    assert [s.cameras for s in writer.written] == [[], ["wrist"]]
    assert sorted(p.name for p in drop.iterdir()) == sorted(s.path.name for s in writer.written)
    with pytest.raises(ValueError, match="robot name 'arm 7'"):
        DropFolderWriter(drop, "arm 7", fps=10, batch_size=1)
