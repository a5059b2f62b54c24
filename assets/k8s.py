"""Where each asset runs on Kubernetes: training on a GPU node, collectors and table work on CPU nodes.

The ``dagster-k8s/config`` op tag is read by dagster-k8s's job executor (one Kubernetes Job per step)
and ignored everywhere else, so the same assets run unchanged on a laptop. ``RECAP_EXECUTOR=k8s`` in
the code location's environment switches the jobs to ``k8s_job_executor`` (deploy/k8s/ has the
instance configuration and Helm values); by default a run's steps run in its own process.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recap_core.external.config import ExternalKubernetesConfig

K8S_CONFIG_TAG = "dagster-k8s/config"

# Requests sized for the default networks and a Meta-World collector; limits keep a step on its node.
TRAINING_RESOURCES = {
    "requests": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"},
    "limits": {"memory": "32Gi", "nvidia.com/gpu": "1"},
}
COLLECTOR_RESOURCES = {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"memory": "8Gi"}}
TABLE_RESOURCES = {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"memory": "8Gi"}}

_GPU_POD = {
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
}


def _tags(resources: dict, pod: dict | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {"container_config": {"resources": resources}}
    if pod:
        config["pod_spec_config"] = pod
    return {K8S_CONFIG_TAG: config}


def training_tags() -> dict[str, Any]:
    """A GPU (and a toleration for GPU nodes' taint): value functions, policies and baselines."""
    return _tags(TRAINING_RESOURCES, _GPU_POD)


def collector_tags() -> dict[str, Any]:
    """CPU only: simulated robots collecting demonstrations, rollouts and evaluations."""
    return _tags(COLLECTOR_RESOURCES)


def table_tags() -> dict[str, Any]:
    """CPU only: labelling, thresholds and reports over the store's tables."""
    return _tags(TABLE_RESOURCES)


def executor_from_env():
    """The executor of every job, from RECAP_EXECUTOR: unset or "in_process" runs a run's steps one after
    another in its run worker (one Python process per run: a step no longer pays 10-35 s to import torch
    and Dagster again); "multiprocess" gives each step a process of its own; "k8s" a Kubernetes Job of
    its own (``k8s_job_executor``, needs the deploy extra)."""
    choice = os.environ.get("RECAP_EXECUTOR", "") or "in_process"
    if choice == "in_process":
        import dagster as dg

        return dg.in_process_executor
    if choice == "multiprocess":
        import dagster as dg

        return dg.multiprocess_executor
    if choice == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    raise ValueError(f"RECAP_EXECUTOR must be in_process, multiprocess or k8s, got {choice!r}")


def external_trainer_pod_spec(config: ExternalKubernetesConfig) -> dict[str, Any]:
    """The pod an external trainer runs in (dagster-k8s's Pipes client adds the image, the command and
    Pipes' bootstrap variables): the checkpoint root's volume at the path the pipeline sees it at, so the
    dataset and output paths of the command are the same folders, and the GPUs it asks for."""
    requests: dict[str, Any] = {"cpu": config.cpu, "memory": config.memory}
    limits: dict[str, Any] = {"memory": config.memory}
    if config.gpus:
        requests["nvidia.com/gpu"] = str(config.gpus)
        limits["nvidia.com/gpu"] = str(config.gpus)
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": "trainer",
                "resources": {"requests": requests, "limits": limits},
                "volume_mounts": [{"name": "recap-data", "mount_path": config.mount_path}],
            }
        ],
        "volumes": [{"name": "recap-data", "persistent_volume_claim": {"claim_name": config.volume_claim}}],
        "restart_policy": "Never",
    }
    if config.gpus:
        spec.update(_GPU_POD)
    return spec
