"""Algorithm 1 over the wire, as a fleet runs it: Meta-World plays the robot, `recap serve` serves the
deployed pi^0 over openpi's protocol to the real `openpi-client`, the recorder (its own process, a
scripted operator taking over on some episodes) drops LeRobot episodes into the fleet folder, the
`new_fleet_data` sensor asks for iteration 1, the iteration ingests them (takeovers as corrections,
labelled positive), the deployment step publishes pi^1, and a robot's next connection gets it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import dagster as dg
import numpy as np
import polars as pl
import yaml
from openpi_client.websocket_client_policy import WebsocketClientPolicy
from paths import PROJECT_ROOT
from pipeline_helpers import latest_metadata

from assets.resources import RecapResource
from pipelines.automation import new_fleet_data
from pipelines.run import materialize_iteration, run_loop
from recap_core.checkpoints import checkpoint_sha256
from recap_core.presets import preset_file
from recap_core.serving.deployment import DeploymentPointer
from recap_core.sim.tasks import get_task
from schemas.derived import FLEET_IMPORTS

TASK = "reach-v3"
ROBOT_EPISODES, BATCH = 4, 2


def _recap(root) -> RecapResource:
    """The tiny preset with a gate that always passes (the gate's rule is tested on its own): this test
    is about the loop reaching the robots."""
    settings = {**yaml.safe_load(preset_file("tiny").read_text()), "deploy_margin": 1.0}
    (root / "fleet.yaml").write_text(yaml.safe_dump(settings))
    return RecapResource(
        preset=str(root / "fleet.yaml"),
        store_uri=str(root / "lance"),
        checkpoint_root=str(root / "checkpoints"),
        ledger_uri=str(root / "ledger" / "metrics"),
        lerobot_drop_folder=str(root / "drop"),
    )


def _serve(root) -> tuple[subprocess.Popen, str]:
    """`recap serve --task` as a robot team starts it; its first line says where it serves."""
    env = {**os.environ, "RECAP_HOME": str(root / "home")}
    command = [sys.executable, "-m", "pipelines.cli", "serve", "--task", TASK,
               "--checkpoints", str(root / "checkpoints"), "--port", "0"]  # fmt: skip
    server = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    line = server.stdout.readline()
    assert line, f"recap serve exited with {server.wait()}"
    return server, json.loads(line)["serving"]


def _record(url: str, drop) -> dict:
    """The robot's computer: the recorder's command with the Meta-World station (a scripted operator
    watching every second episode takes over for 10 steps, then hands back)."""
    command = [
        sys.executable, "-m", "recap_core.robot.record", "--policy", url,
        "--robot", "recap_core.robot.examples.metaworld:station", "--robot-arg", f"task={TASK}",
        "--robot-arg", "takeover_every=2", "--task", TASK, "--prompt", get_task(TASK).prompt,
        "--episodes", str(ROBOT_EPISODES), "--batch-size", str(BATCH), "--drop-folder", str(drop),
        "--max-steps", "60",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_loop_closes_over_the_wire(tmp_path):
    began = time.monotonic()
    recap = _recap(tmp_path)
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        run_loop(recap, instance, iterations=0, log=lambda _: None)
        pointer = DeploymentPointer(recap.checkpoint_layout().root, TASK)
        pi0 = recap.checkpoint_layout().iteration("policy", TASK, 0)
        assert pointer.current().iteration == 0 and pointer.current().sha256 == checkpoint_sha256(pi0)
        server, url = _serve(tmp_path)
        try:
            robot = WebsocketClientPolicy(host=url)
            before = robot.get_server_metadata()
            assert (before["task"], before["iteration"], before["deployment_version"]) == (TASK, 0, 1)

            report = _record(url, tmp_path / "drop")
            assert report["episodes"] == ROBOT_EPISODES and len(report["datasets"]) == ROBOT_EPISODES // BATCH

            with dg.build_sensor_context(instance=instance, resources={"recap": recap}) as context:
                requested = new_fleet_data(context)
            assert [r.partition_key for r in requested.run_requests] == [f"1|{TASK}"]
            assert materialize_iteration(recap, instance, TASK, 1, trigger="new_fleet_data").success

            # the robot's episodes are iteration 1's data, named by the checkpoint that drove them
            store = recap.store()
            imported = store.read_derived(FLEET_IMPORTS)
            assert imported.height == ROBOT_EPISODES // BATCH and imported["iteration"].to_list() == [1, 1]
            episodes = store.episodes(task=TASK, iteration=1).frame.filter(
                pl.col("source").str.starts_with("lerobot:")
            )
            assert episodes.height == ROBOT_EPISODES
            assert set(episodes["collected_by"]) == {before["policy_label"]}
            assert sorted(episodes["kind"].to_list()) == [
                "autonomous",
                "autonomous",
                "intervention",
                "intervention",
            ]
            ids = episodes["episode_id"].to_list()
            labels = store.read_derived("indicators", filter=f"task = '{TASK}' AND iteration = 1").filter(
                pl.col("episode_id").is_in(ids)
            )
            taken_over = (
                store.lazy("steps")
                .filter(pl.col("episode_id").is_in(ids) & pl.col("is_correction"))
                .collect()
            )
            corrections = labels.filter(pl.col("is_correction"))
            assert 0 < corrections.height == taken_over.height  # the operator's steps, each a correction
            assert corrections["indicator"].all()

            deployed = latest_metadata(instance, "deployment", f"1|{TASK}")
            pi1 = recap.checkpoint_layout().iteration("policy", TASK, 1)
            assert deployed["published"] and deployed["serving_iteration"] == 1

            after = WebsocketClientPolicy(host=url).get_server_metadata()
            assert (after["iteration"], after["deployment_version"]) == (1, 2)
            assert after["checkpoint_sha256"] == checkpoint_sha256(pi1) != before["checkpoint_sha256"]
            # the first robot's connection was never dropped, and still runs the version it started with
            observation = {"observation/state": np.zeros(before["obs_dim"], np.float32), "prompt": "reach"}
            assert robot.infer(observation)["actions"].shape == (before["horizon"], before["action_dim"])
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"loop over the wire: {time.monotonic() - began:.1f} s")  # for the record (-s shows it)
