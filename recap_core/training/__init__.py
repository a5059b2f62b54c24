"""Trainers (RECAP and the baselines), checkpoints and hub transfer for the value function and the policy."""

from recap_core.training.checkpoints import CheckpointRef, checkpoint_sha256, read_checkpoint_config
from recap_core.training.config import (
    OptimisationConfig,
    PolicyTrainConfig,
    TrainingHistory,
    ValueTrainConfig,
)
from recap_core.training.hub import pull_checkpoint, push_checkpoint
from recap_core.training.objectives import awr_weights, spo_flow_objective
from recap_core.training.policy_training import (
    TrainedPolicy,
    load_policy,
    load_trained_policy,
    save_policy,
    train_policy,
)
from recap_core.training.value_training import (
    ValueFunction,
    load_value_function,
    predict_values,
    save_value_function,
    train_value_function,
)

__all__ = [
    "CheckpointRef",
    "OptimisationConfig",
    "PolicyTrainConfig",
    "TrainedPolicy",
    "TrainingHistory",
    "ValueFunction",
    "ValueTrainConfig",
    "awr_weights",
    "checkpoint_sha256",
    "load_policy",
    "load_trained_policy",
    "load_value_function",
    "predict_values",
    "pull_checkpoint",
    "push_checkpoint",
    "read_checkpoint_config",
    "save_policy",
    "save_value_function",
    "spo_flow_objective",
    "train_policy",
    "train_value_function",
]
