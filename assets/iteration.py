"""Shared pieces of the per-(task, iteration) assets."""

from assets.partitions import TASK_ITERATION

PRETRAINING_GROUP = "pretraining"
ITERATION_GROUP = "recap_iteration"
PARTITIONS = TASK_ITERATION
