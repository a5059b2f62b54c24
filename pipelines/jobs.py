"""Jobs: pre-training (unpartitioned), one RECAP iteration of one task (partitioned), with or without
the baselines, and the study's report. The CLI launches these same jobs, so its runs carry their names."""

from __future__ import annotations

import dagster as dg

from assets.baselines import BASELINE_GROUP
from assets.iteration import ITERATION_GROUP, PRETRAINING_GROUP
from assets.partitions import TASK_ITERATION
from assets.report import REPORT_GROUP

PRETRAINING_JOB = "pretraining"
ITERATION_JOB = "recap_iteration"
ITERATION_WITH_BASELINES_JOB = "recap_iteration_with_baselines"
REPORT_JOB = "study_report"  # not the asset's name: Dagster refuses a job named like an op

pretraining_job = dg.define_asset_job(
    PRETRAINING_JOB,
    selection=dg.AssetSelection.groups(PRETRAINING_GROUP),
    description="Demonstrations, V_pre, pre-training indicators and pi_pre.",
)

iteration_job = dg.define_asset_job(
    ITERATION_JOB,
    selection=dg.AssetSelection.groups(ITERATION_GROUP),
    partitions_def=TASK_ITERATION,
    description="One RECAP iteration of one task: experience, V^k, advantages, indicators, pi^k, evaluation.",
)

experiment_iteration_job = dg.define_asset_job(
    ITERATION_WITH_BASELINES_JOB,
    selection=dg.AssetSelection.groups(ITERATION_GROUP, BASELINE_GROUP),
    partitions_def=TASK_ITERATION,
    description="One RECAP iteration of one task plus the SFT/AWR/PPO baselines on the same data.",
)

report_job = dg.define_asset_job(
    REPORT_JOB,
    selection=dg.AssetSelection.groups(REPORT_GROUP),
    description="The study's report: RECAP^K against SFT, AWR and PPO, read back from the metrics ledger.",
)

JOBS = [pretraining_job, iteration_job, experiment_iteration_job, report_job]
