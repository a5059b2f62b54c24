"""Everything about trained artefacts, and nothing about training them.

format (files, sha256), verification (recorded weights sha256, finite tensors), serialise (save a
network, load weights), value / policy (V and pi as loaded objects: save, load, label, act), layout
(where a stage's checkpoint lives, atomic publication, lineage), mirror (object storage) and Hub transfer
(hub_mixin, hub_push, hub_pull). Collection, labelling, evaluation and the CLI load weights from here
without importing a trainer.

Naming and verifying a checkpoint needs neither torch nor the Hub client, so those names load with the
package; the loaded networks (value / policy) and Hub transfer are imported the first time one of their
names is asked for (PEP 562), so what only records or checks a checkpoint never imports torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from recap_core.checkpoints.format import CheckpointRef, read_checkpoint_config
from recap_core.checkpoints.verification import checkpoint_sha256

if TYPE_CHECKING:
    from recap_core.checkpoints.hub_pull import pull_checkpoint
    from recap_core.checkpoints.hub_push import push_checkpoint
    from recap_core.checkpoints.policy import TrainedPolicy, load_policy, load_trained_policy, save_policy
    from recap_core.checkpoints.value import (
        ValueFunction,
        load_value_function,
        predict_values,
        save_value_function,
    )

_LAZY = {
    "pull_checkpoint": "hub_pull",
    "push_checkpoint": "hub_push",
    "TrainedPolicy": "policy",
    "load_policy": "policy",
    "load_trained_policy": "policy",
    "save_policy": "policy",
    "ValueFunction": "value",
    "load_value_function": "value",
    "predict_values": "value",
    "save_value_function": "value",
}
"""Names of the modules that load torch or the Hub client: module each is imported from on first use."""


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


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
