"""Trainers only: the value function's and the policy's (RECAP and the baselines' objectives), their
configurations, and data-parallel training. Loading and saving what they produce is recap_core.checkpoints."""

from recap_core.training.config import (
    OptimisationConfig,
    PolicyTrainConfig,
    TrainingHistory,
    ValueTrainConfig,
)
from recap_core.training.objectives import awr_weights, spo_flow_objective
from recap_core.training.policy_training import train_policy
from recap_core.training.value_training import train_value_function

__all__ = [
    "OptimisationConfig",
    "PolicyTrainConfig",
    "TrainingHistory",
    "ValueTrainConfig",
    "awr_weights",
    "spo_flow_objective",
    "train_policy",
    "train_value_function",
]
