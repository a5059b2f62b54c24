"""The Dagster code location "recap" (workspace.yaml): served by `recap ui`, launched by `dg launch`."""

from __future__ import annotations

import os

import dagster as dg

from assets.advantages import advantages
from assets.baselines import baselines
from assets.collecting_policy import collecting_policy
from assets.demonstrations import demonstrations
from assets.deployment import deployment
from assets.evaluation import evaluation
from assets.experience import experience
from assets.indicators import indicators
from assets.k8s import executor_from_env
from assets.labelled_dataset import labelled_dataset
from assets.policy import policy
from assets.pretraining import policy_pretrained, pretraining_indicators, value_function_pretrained
from assets.report import experiment_report
from assets.resources import RecapResource
from assets.value_function import value_function
from pipelines.automation import new_fleet_data, nightly_recap
from pipelines.jobs import JOBS

DEFINITIONS_MODULE = "pipelines.definitions"  # what workspace.yaml loads, as code location "recap"
CODE_LOCATION = "recap"

ALL_ASSETS = [
    demonstrations,
    value_function_pretrained,
    pretraining_indicators,
    policy_pretrained,
    collecting_policy,
    experience,
    value_function,
    advantages,
    indicators,
    labelled_dataset,
    policy,
    evaluation,
    deployment,
    baselines,
    experiment_report,
]


def recap_resource_from_env() -> RecapResource:
    """The resource as the UI, the CLI and the schedule see it; RECAP_* variables override defaults."""
    tasks = os.environ.get("RECAP_TASKS", "")
    return RecapResource(
        preset=os.environ.get("RECAP_PRESET", "fast"),
        tasks=[t for t in tasks.split(",") if t],
        lerobot_drop_folder=os.environ.get("RECAP_DROP_FOLDER", ""),
        study=os.environ.get("RECAP_STUDY", "default"),
    )


defs = dg.Definitions(
    assets=ALL_ASSETS,
    jobs=JOBS,
    schedules=[nightly_recap],
    sensors=[new_fleet_data],
    resources={"recap": recap_resource_from_env()},
    executor=executor_from_env(),
)
