"""Everything about trained artefacts, and nothing about training them.

format (files, sha256), verification (recorded weights sha256, finite tensors), serialise (save a
network, load weights), value / policy (V and pi as loaded objects: save, load, label, act), layout
(where a stage's checkpoint lives, atomic publication, lineage), mirror (object storage) and Hub transfer
(hub_mixin, hub_push, hub_pull). Collection, labelling, evaluation and the CLI load weights from here
without importing a trainer.
"""

from recap_core.checkpoints.format import CheckpointRef, read_checkpoint_config
from recap_core.checkpoints.hub_pull import pull_checkpoint
from recap_core.checkpoints.hub_push import push_checkpoint
from recap_core.checkpoints.policy import TrainedPolicy, load_policy, load_trained_policy, save_policy
from recap_core.checkpoints.value import (
    ValueFunction,
    load_value_function,
    predict_values,
    save_value_function,
)
from recap_core.checkpoints.verification import checkpoint_sha256

__all__ = [
    "CheckpointRef",
    "TrainedPolicy",
    "ValueFunction",
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
]
