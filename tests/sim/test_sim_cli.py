"""`recap collect demos`, `recap collect rollouts` and `recap evaluate` from the shell entry point."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from pipelines.cli.main import app
from recap_core.checkpoints import save_policy
from recap_core.models import FlowPolicyConfig
from recap_core.store import EpisodeStore
from recap_core.training import PolicyTrainConfig, train_policy


@pytest.fixture
def recap_home(tmp_path, monkeypatch):
    monkeypatch.setenv("RECAP_HOME", str(tmp_path))
    monkeypatch.delenv("RECAP_STORE_URI", raising=False)
    return tmp_path


def _last_json(output: str) -> dict:
    """The JSON summary line (progress bars go to stderr, which the runner may interleave)."""
    lines = output.replace("\r", "\n").splitlines()
    return json.loads([line[line.index("{") :] for line in lines if "{" in line][-1])


def test_collect_demos_train_then_rollouts_and_evaluate(recap_home):
    runner = CliRunner()
    result = runner.invoke(app, ["collect", "demos", "--task", "point-reach", "--episodes", "12"])
    assert result.exit_code == 0, result.output
    summary = _last_json(result.output)
    assert summary["added"] == 12 and summary["skipped"] == 0 and summary["kinds"] == {"demo": 12}
    again = _last_json(
        runner.invoke(app, ["collect", "demos", "--task", "point-reach", "--episodes", "12"]).output
    )
    assert again["added"] == 0 and again["skipped"] == 12

    store = EpisodeStore()
    steps = store.load_steps(task="point-reach")
    torch.manual_seed(0)
    config = PolicyTrainConfig(
        epochs=1, batch_size=64, architecture=FlowPolicyConfig(hidden=32, depth=1, horizon=4)
    )
    policy, _ = train_policy(steps, np.ones(len(steps), dtype=bool), config)
    checkpoint = recap_home / "checkpoints" / "pi-test"
    save_policy(policy, checkpoint, config)

    result = runner.invoke(
        app,
        ["collect", "rollouts", "--policy", str(checkpoint), "--task", "point-reach", "--episodes", "6",
         "--iteration", "1", "--intervention-share", "1.0", "--workers", "0"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = _last_json(result.output)
    assert summary["added"] == 6
    assert summary["collected_by"].startswith("policy:checkpoints/pi-test@")
    stored = store.episodes(task="point-reach", iteration=1).frame
    assert stored.height == 6 and set(stored["kind"]) <= {"autonomous", "intervention"}

    result = runner.invoke(
        app,
        ["evaluate", "--policy", str(checkpoint), "--task", "point-reach", "--episodes", "5",
         "--workers", "0", "--reset-seconds", "2", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = _last_json(result.output)
    assert metrics["episodes"] == 5 and metrics["task"] == "point-reach"
    assert metrics["success_rate"] == pytest.approx(metrics["successes"] / 5)
    assert metrics["throughput_per_hour"] == pytest.approx(metrics["successes"] / metrics["robot_hours"])
    assert metrics["robot_hours"] >= 5 * 2 / 3600
    info = json.loads(Path(metrics["eval_info"]).read_text())
    assert Path(metrics["eval_info"]).parent.parent == recap_home / "eval" / "point-reach"
    assert [e["episode_ix"] for e in info["per_episode"]] == [0, 1, 2, 3, 4]
    assert sum(e["success"] for e in info["per_episode"]) == metrics["successes"]
    assert info["aggregated"]["pc_success"] == pytest.approx(100 * metrics["success_rate"])
    assert info["policy"] == metrics["policy"] and info["video_paths"] == []


def test_evaluate_writes_videos_of_meta_world_episodes(recap_home):
    """Videos are rendered offscreen by replaying the evaluated episodes (checked step by step)."""
    import av

    demos = ["collect", "demos", "--task", "reach-v3", "--episodes", "3", "--max-steps", "30"]
    assert CliRunner().invoke(app, demos).exit_code == 0
    steps = EpisodeStore().load_steps(task="reach-v3")
    torch.manual_seed(0)
    config = PolicyTrainConfig(
        epochs=1, batch_size=64, architecture=FlowPolicyConfig(hidden=32, depth=1, horizon=4)
    )
    policy, _ = train_policy(steps, np.ones(len(steps), dtype=bool), config)
    checkpoint = recap_home / "checkpoints" / "pi-reach"
    save_policy(policy, checkpoint, config)
    out = recap_home / "eval-out"
    result = CliRunner().invoke(
        app,
        ["evaluate", "--policy", str(checkpoint), "--task", "reach-v3", "--episodes", "3",
         "--max-steps", "30", "--workers", "0", "--videos", "2", "--video-size", "64",
         "--output-dir", str(out), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    info = json.loads((out / "eval_info.json").read_text())
    assert len(info["per_episode"]) == 3 and len(info["video_paths"]) == 2
    for path, episode in zip(info["video_paths"], info["per_episode"], strict=False):
        assert f"seed_{episode['seed']}_" in Path(path).name
        with av.open(path) as container:
            stream = container.streams.video[0]
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
            assert round(float(stream.average_rate)) == round(1 / 0.0125)  # Meta-World's 80 Hz control
        assert len(frames) == episode["length"] + 1 and frames[0].shape == (64, 64, 3)
        assert frames[0].std() > 10  # a rendered scene, not a blank frame


def test_unknown_task_is_a_clear_error(recap_home):
    result = CliRunner().invoke(app, ["collect", "demos", "--task", "nope", "--episodes", "1"])
    assert result.exit_code == 2
    assert "unknown task 'nope'" in result.output


def test_the_cli_and_the_pipeline_label_rollouts_alike(recap_home):
    """`recap collect rollouts` used to label rollouts with the resolved hidden version folder of the
    checkpoint link, so the same rollouts got other episode ids than the pipeline's. One label now."""
    from recap_core.checkpoints.labels import policy_label
    from recap_core.checkpoints.layout import CheckpointLayout

    runner = CliRunner()
    assert runner.invoke(app, ["collect", "demos", "--task", "point-reach", "--episodes", "6"]).exit_code == 0
    steps = EpisodeStore().load_steps(task="point-reach")
    torch.manual_seed(0)
    config = PolicyTrainConfig(
        epochs=1, batch_size=64, architecture=FlowPolicyConfig(hidden=32, depth=1, horizon=4)
    )
    policy, _ = train_policy(steps, np.ones(len(steps), dtype=bool), config)
    layout = CheckpointLayout(recap_home / "checkpoints")
    link = layout.iteration("policy", "point-reach", 0)
    with layout.publishing(link) as version:
        save_policy(policy, version, config)
    collect = ["collect", "rollouts", "--task", "point-reach", "--episodes", "4", "--iteration", "1",
               "--workers", "0", "--policy"]  # fmt: skip
    by_link = _last_json(runner.invoke(app, [*collect, str(link)]).output)
    by_version = _last_json(runner.invoke(app, [*collect, str(link.resolve())]).output)
    assert link.resolve().name.startswith(".iteration-000.")
    assert by_link["collected_by"] == by_version["collected_by"] == policy_label(link)
    assert by_link["collected_by"].startswith("policy:point-reach/iteration-000@")
    assert by_link["added"] == 4 and by_version["added"] == 0 and by_version["skipped"] == 4  # same ids
    # and the same initial states: the CLI's default seeds are the pipeline's block for iteration 1
    from recap_core.episode import stable_episode_id
    from recap_core.loop.seeding import run_seeds
    from recap_core.loop.settings import LoopSettings

    label = policy_label(link)
    expected = {
        stable_episode_id("point-reach", "rollout", seed, label, 1)
        for seed in run_seeds(LoopSettings()).rollouts(1)[:4]
    }
    assert (
        set(EpisodeStore().episodes(task="point-reach", iteration=1).frame["episode_id"].to_list())
        == expected
    )
