"""Shared pieces of the per-(task, iteration) assets."""

from pipelines.partitions import TASK_ITERATION

ITERATION_GROUP = "recap_iteration"
PARTITIONS = TASK_ITERATION
