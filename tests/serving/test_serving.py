"""`recap serve` against the real openpi client: metadata, action chunks, refusals that keep the server
serving, API keys, several robots at once, a remote evaluation equal to the in-process one, and a server
following the deployment pointer without dropping its connections."""

from __future__ import annotations

import json
import shutil
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from openpi_client.websocket_client_policy import WebsocketClientPolicy
from typer.testing import CliRunner
from websockets.exceptions import InvalidStatus

from pipelines.cli.main import app
from recap_core.checkpoints import checkpoint_sha256, load_policy
from recap_core.checkpoints.policy import TrainedPolicy, save_policy
from recap_core.models.flow_policy import FlowMatchingPolicy, FlowPolicyConfig
from recap_core.models.vision import VisionConfig
from recap_core.serving.client import PolicyClient, RemotePolicy, ServerError
from recap_core.serving.deployment import Deployment, DeploymentPointer
from recap_core.serving.served_policy import ServedPolicy
from recap_core.serving.server import DeployedPolicy, FixedPolicy, PolicyServer
from recap_core.sim import RolloutConfig, eval_seeds, evaluate_policy
from recap_core.sim.operator import collect_demos
from recap_core.sim.tasks import get_task
from recap_core.store import EpisodeStore
from recap_core.training.policy_training import PolicyTrainConfig, train_policy

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TASK = "point-reach"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Two tiny point-reach policies trained on scripted demos (different weights), and an untrained
    network that reads one camera (a valid checkpoint: the protocol does not care how well it acts)."""
    root = tmp_path_factory.mktemp("serving")
    store = EpisodeStore(str(root / "lance"))
    store.add_episodes(list(collect_demos(get_task(TASK), range(16))))
    steps = store.load_steps(task=TASK)
    out = {}
    for name, epochs in (("first", 10), ("second", 1)):
        torch.manual_seed(0)
        config = PolicyTrainConfig(
            epochs=epochs, batch_size=64, architecture=FlowPolicyConfig(hidden=32, depth=1, horizon=4)
        )
        policy, _ = train_policy(steps, np.ones(len(steps), dtype=bool), config)
        save_policy(policy, root / name, config)
        out[name] = root / name
    vision = FlowPolicyConfig(
        obs_dim=steps.observations.shape[1], action_dim=steps.actions.shape[1], hidden=32, depth=1, horizon=4,
        images=VisionConfig(cameras=("top",), image_size=32),
    )  # fmt: skip
    save_policy(TrainedPolicy(FlowMatchingPolicy(vision, load_pretrained=False), "recap"), root / "camera")
    out["camera"] = root / "camera"
    return out


@pytest.fixture(scope="module")
def server(checkpoints) -> PolicyServer:
    with PolicyServer(FixedPolicy(ServedPolicy.load(checkpoints["first"])), port=0) as running:
        yield running


def _state(dim: int = 6) -> np.ndarray:
    return np.linspace(-0.5, 0.5, dim, dtype=np.float32)


def _last_json(output: str) -> dict:
    """The command's JSON line (progress bars go to stderr, which the runner interleaves)."""
    lines = output.replace("\r", "\n").splitlines()
    return json.loads([line[line.index("{") :] for line in lines if "{" in line][-1])


def test_the_openpi_client_gets_metadata_and_action_chunks(server, checkpoints):
    client = WebsocketClientPolicy(host="127.0.0.1", port=server.port)
    meta = client.get_server_metadata()
    assert meta["protocol"] == "openpi-websocket" and meta["horizon"] == 4 and meta["beta"] == 1.0
    assert meta["checkpoint_sha256"] == checkpoint_sha256(checkpoints["first"])
    assert meta["obs_dim"] == 6 and meta["action_dim"] == 2 and meta["cameras"] == []
    assert meta["observation_keys"]["state"] == "observation/state"
    prompt = get_task(TASK).prompt
    reply = client.infer({"observation/state": _state(), "prompt": prompt})
    assert reply["actions"].shape == (4, 2) and reply["actions"].dtype == np.float32
    assert np.isfinite(reply["actions"]).all() and reply["server_timing"]["infer_ms"] > 0
    batch = client.infer({"observation/state": np.stack([_state()] * 3), "prompt": [prompt] * 3})
    assert batch["actions"].shape == (3, 4, 2)
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz") as response:
        assert response.status == 200


@pytest.mark.parametrize(
    ("observation", "message"),
    [
        ({"prompt": "reach"}, "has no 'observation/state'"),
        ({"observation/state": np.zeros(3, np.float32), "prompt": "reach"}, "shape (6,) or (B, 6)"),
        ({"observation/state": np.zeros(6, np.float32)}, "has no 'prompt'"),
        ({"observation/state": np.full(6, np.nan, np.float32), "prompt": "reach"}, "NaN"),
    ],
)
def test_a_bad_observation_gets_a_clear_error_and_the_connection_keeps_serving(server, observation, message):
    client = WebsocketClientPolicy(host="127.0.0.1", port=server.port)
    with pytest.raises(RuntimeError, match="Error in inference server") as error:
        client.infer(observation)
    assert message in str(error.value)
    assert client.infer({"observation/state": _state(), "prompt": "reach"})["actions"].shape == (4, 2)


def test_camera_frames_are_checked_against_the_checkpoint(checkpoints):
    with PolicyServer(FixedPolicy(ServedPolicy.load(checkpoints["camera"])), port=0) as served:
        client = WebsocketClientPolicy(host="127.0.0.1", port=served.port)
        assert client.get_server_metadata()["observation_keys"]["cameras"] == {"top": "observation/top"}
        wrong = {
            "observation/state": _state(),
            "prompt": "reach",
            "observation/top": np.zeros((64, 64, 3), np.uint8),
        }
        with pytest.raises(
            RuntimeError, match=r"'observation/top' must be uint8 frames of shape \(32, 32, 3\)"
        ):
            client.infer(wrong)
        frame = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
        reply = client.infer({**wrong, "observation/top": frame})
        assert reply["actions"].shape == (4, 2)


def test_an_api_key_is_required_when_configured(checkpoints):
    with PolicyServer(
        FixedPolicy(ServedPolicy.load(checkpoints["first"])), port=0, api_key="s3cret"
    ) as served:
        with pytest.raises(InvalidStatus, match="401"):
            WebsocketClientPolicy(host="127.0.0.1", port=served.port)
        with pytest.raises(InvalidStatus, match="401"):
            WebsocketClientPolicy(host="127.0.0.1", port=served.port, api_key="wrong")
        client = WebsocketClientPolicy(host="127.0.0.1", port=served.port, api_key="s3cret")
        assert client.infer({"observation/state": _state(), "prompt": "reach"})["actions"].shape == (4, 2)


def test_four_robots_at_once(server):
    results: dict[int, list] = {}

    def robot(index: int) -> None:
        client = WebsocketClientPolicy(host="127.0.0.1", port=server.port)
        results[index] = [
            client.infer({"observation/state": _state() * index, "prompt": "reach"})["actions"].shape
            for _ in range(10)
        ]

    threads = [threading.Thread(target=robot, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results) == [0, 1, 2, 3]
    assert all(shapes == [(4, 2)] * 10 for shapes in results.values())


def test_remote_evaluation_equals_in_process_evaluation(server, checkpoints):
    """Same checkpoint, seeds and sampling seed: the same chunks, so the same episodes."""
    task = get_task(TASK)
    seeds = eval_seeds(12, split="validation")
    config = RolloutConfig(num_envs=4, workers=0)
    episodes = {}

    def run(policy, name):
        rollouts = []
        result = evaluate_policy(
            policy, task, seeds, reset_seconds=5.0, config=config, on_episode=rollouts.append
        )
        episodes[name] = sorted((r.seed, r.success, len(r.actions)) for r in rollouts)
        return result

    local = run(load_policy(checkpoints["first"], seed=7), "local")
    remote_policy = RemotePolicy(server.url, seed=7)
    remote = run(remote_policy, "remote")
    remote_policy.close()
    assert episodes["remote"] == episodes["local"]
    assert remote.success_rate == local.success_rate and remote.successes > 0
    assert (
        remote_policy.label
        == f"policy:{checkpoints['first'].parent.name}/first@{checkpoint_sha256(checkpoints['first'])[:12]}"
    )


def test_recap_evaluate_drives_a_served_policy(server, checkpoints, tmp_path, monkeypatch):
    monkeypatch.setenv("RECAP_HOME", str(tmp_path))
    common = ["evaluate", "--task", TASK, "--episodes", "6", "--workers", "0", "--preset", "tiny", "--json",
              "--output-dir", str(tmp_path / "eval")]  # fmt: skip
    runner = CliRunner()
    local = runner.invoke(app, [*common, "--policy", str(checkpoints["first"])])
    remote = runner.invoke(app, [*common, "--policy", server.url])
    assert local.exit_code == 0 and remote.exit_code == 0, local.output + remote.output
    local_metrics, remote_metrics = (_last_json(result.output) for result in (local, remote))
    assert remote_metrics["policy"] == local_metrics["policy"]
    assert remote_metrics["success_rate"] == local_metrics["success_rate"]
    refused = runner.invoke(app, [*common, "--policy", server.url, "--beta", "2"])
    assert isinstance(refused.exception, ValueError) and "samples with beta 1" in str(refused.exception)


def test_a_server_following_the_pointer_switches_at_the_next_connection(checkpoints, tmp_path):
    pointer = DeploymentPointer(tmp_path / "checkpoints", TASK)

    def publish(name: str, iteration: int) -> Deployment:
        return pointer.publish(
            Deployment(str(checkpoints[name]), checkpoint_sha256(checkpoints[name]), TASK, iteration)
        )

    publish("first", 0)
    with PolicyServer(DeployedPolicy(pointer), port=0) as served:
        before = PolicyClient(served.url)
        assert before.metadata["deployment_version"] == 1 and before.metadata["iteration"] == 0
        publish("second", 1)
        after = PolicyClient(served.url)
        assert after.metadata["deployment_version"] == 2 and after.metadata["iteration"] == 1
        assert after.metadata["checkpoint_sha256"] == checkpoint_sha256(checkpoints["second"])
        request = {"observation/state": _state(), "prompt": "reach"}
        # the open connection was not dropped: it keeps the version its episode started with
        assert before.infer(request)["actions"].shape == (4, 2)
        first = ServedPolicy.load(checkpoints["first"]).session(0).infer(request)["actions"]
        assert np.array_equal(PolicyClient(served.url).infer(request)["actions"], first) is False
        rolled = pointer.rollback()
        assert rolled.version == 3 and rolled.iteration == 0 and "rollback from version 2" in rolled.reason
        again = PolicyClient(served.url)
        assert again.metadata["deployment_version"] == 3
        assert again.metadata["checkpoint_sha256"] == checkpoint_sha256(checkpoints["first"])
        assert np.array_equal(again.infer(request)["actions"], first)
        # a checkpoint changed after it was published is refused, not served
        shutil.copytree(checkpoints["first"], tmp_path / "edited")
        publish_edited = Deployment(
            str(tmp_path / "edited"), checkpoint_sha256(checkpoints["first"]), TASK, 2
        )
        pointer.publish(publish_edited)
        (tmp_path / "edited" / "config.json").write_text(
            (tmp_path / "edited" / "config.json").read_text().replace('"recap"', '"sft"', 1)
        )
        with pytest.raises((InvalidStatus, ServerError)):
            PolicyClient(served.url)
    assert [d.version for d in pointer.history()] == [1, 2, 3, 4]
