"""The Kubernetes profile, checked without a cluster: the instance configuration against dagster-k8s's
own schema, and the pods each asset's dagster-k8s/config tag produces (GPU for training, CPU otherwise)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster_k8s import K8sRunLauncher
from dagster_k8s.job import DagsterK8sJobConfig, construct_dagster_k8s_job, get_user_defined_k8s_config
from paths import PROJECT_ROOT

from assets.k8s import executor_from_env
from pipelines.definitions import defs

K8S = PROJECT_ROOT / "deploy" / "k8s"
TRAINING = {"value_function_pretrained", "policy_pretrained", "value_function", "policy", "baselines"}
CPU_ONLY = {
    "demonstrations",
    "experience",
    "evaluation",
    "deployment",
    "advantages",
    "indicators",
    "pretraining_indicators",
}


def test_the_cluster_instance_configuration_is_valid_for_dagster_k8s():
    config = yaml.safe_load((K8S / "dagster.yaml").read_text())
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    result = process_config(K8sRunLauncher.config_type(), launcher["config"])
    assert result.success, result.errors
    # the whole file against Dagster's instance schema (storage, coordinator, pools, monitoring)
    instance_config, _ = dagster_instance_config(str(K8S), "dagster.yaml")
    assert instance_config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert instance_config["concurrency"]["pools"]["default_limit"] >= 1


def test_a_typo_in_the_launcher_config_is_caught_by_the_schema():
    launcher = yaml.safe_load((K8S / "dagster.yaml").read_text())["run_launcher"]["config"]
    result = process_config(K8sRunLauncher.config_type(), {**launcher, "job_namspace": "recap"})
    assert not result.success


def _step_pod(tags: dict) -> dict:
    job = construct_dagster_k8s_job(
        DagsterK8sJobConfig(
            job_image="registry.example.com/recap-pipeline:latest",
            dagster_home="/opt/dagster/dagster_home",
            instance_config_map="recap-dagster-instance",
        ),
        args=["dagster", "api", "execute_step"],
        job_name="recap-step",
        user_defined_k8s_config=get_user_defined_k8s_config(tags),
        component="step_worker",
    )
    return job.to_dict()["spec"]["template"]["spec"]


def _asset_tags() -> dict[str, dict]:
    tags = {}
    for job_name in ("pretraining", "recap_iteration_with_baselines"):
        for node in defs.resolve_job_def(job_name).graph.node_defs:
            tags[node.name] = dict(node.tags)
    return tags


def test_training_steps_request_a_gpu_and_collectors_only_cpu():
    tags = _asset_tags()
    assert set(tags) >= TRAINING | CPU_ONLY
    for name in sorted(TRAINING | CPU_ONLY):
        pod = _step_pod(tags[name])
        (container,) = pod["containers"]
        requests = container["resources"]["requests"]
        limits = container["resources"]["limits"] or {}
        if name in TRAINING:
            assert requests["nvidia.com/gpu"] == "1" and limits["nvidia.com/gpu"] == "1", name
            assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"]), name
        else:
            assert "nvidia.com/gpu" not in requests and "nvidia.com/gpu" not in limits, name
            assert not pod.get("tolerations"), name
        assert float(requests["cpu"]) >= 1 and requests["memory"].endswith("Gi"), name


def test_the_k8s_executor_is_chosen_by_the_environment(monkeypatch):
    import dagster as dg

    monkeypatch.delenv("RECAP_EXECUTOR", raising=False)
    assert executor_from_env() is dg.in_process_executor  # one process per run, not per step
    monkeypatch.setenv("RECAP_EXECUTOR", "multiprocess")
    assert executor_from_env() is dg.multiprocess_executor
    monkeypatch.setenv("RECAP_EXECUTOR", "mutliprocess")
    with pytest.raises(ValueError, match="RECAP_EXECUTOR must be in_process, multiprocess or k8s"):
        executor_from_env()
    out = subprocess.run(
        [sys.executable, "-c", "from pipelines.definitions import defs; print(defs.executor.name)"],
        env={**os.environ, "RECAP_EXECUTOR": "k8s"}, cwd=PROJECT_ROOT,
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout.strip().splitlines()[-1] == "k8s"


@pytest.mark.parametrize("name", ["values.yaml", "dagster.yaml"])
def test_the_profile_files_are_yaml(name):
    assert yaml.safe_load((K8S / name).read_text())


def test_an_external_trainer_pod_mounts_the_checkpoint_root_and_asks_for_its_gpus(tmp_path):
    """The pod dagster-k8s's Pipes client would create for external_policy.kubernetes, built by its own
    build_pod_body (the Kubernetes model, so a misspelt field fails here)."""
    from dagster_k8s.pipes import build_pod_body

    from assets.k8s import external_trainer_pod_spec
    from assets.training_launcher import require_mounted
    from recap_core.external.config import ExternalKubernetesConfig
    from recap_core.loop.settings import SettingsError, settings_from_mapping

    config = ExternalKubernetesConfig(
        image="registry.example.com/lerobot:0.4", volume_claim="recap-data", mount_path="/data", gpus=2
    )
    command = ["lerobot-train", "--dataset.root=/data/recap/datasets/push-v3/iteration-001"]
    pod = build_pod_body(
        pod_name="recap-policy-trainer",
        image=config.image,
        command=command,
        env_vars={"DAGSTER_PIPES_CONTEXT": "x", "DAGSTER_PIPES_MESSAGES": "y", "HF_HUB_OFFLINE": "1"},
        base_pod_meta=None,
        base_pod_spec=external_trainer_pod_spec(config),
    ).to_dict()
    spec = pod["spec"]
    (container,) = spec["containers"]
    assert container["image"] == config.image and container["command"] == command
    assert {e["name"] for e in container["env"]} >= {"DAGSTER_PIPES_CONTEXT", "HF_HUB_OFFLINE"}
    assert container["volume_mounts"][0]["mount_path"] == "/data"
    (volume,) = spec["volumes"]
    assert volume["persistent_volume_claim"]["claim_name"] == "recap-data"
    assert container["resources"]["requests"]["nvidia.com/gpu"] == "2"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert any(t["key"] == "nvidia.com/gpu" for t in spec["tolerations"])
    assert spec["restart_policy"] == "Never"
    require_mounted(tmp_path / "checkpoints", str(tmp_path))
    with pytest.raises(ValueError, match="does not contain the checkpoint root"):
        require_mounted(tmp_path / "checkpoints", "/data")
    with pytest.raises(SettingsError, match="volume_claim and mount_path must name the volume"):
        settings_from_mapping({"external_policy": {"kubernetes": {"image": "x"}}})
