"""Trainers only: the value function's and the policy's (RECAP and the baselines' objectives), their
configurations, and data-parallel training. Loading and saving what they produce is recap_core.checkpoints.

The configurations (recap_core.training.config) load with the package; the trainers load torch, so they
are imported the first time one of their names is asked for (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from recap_core.training.config import (
    OptimisationConfig,
    PolicyTrainConfig,
    TrainingHistory,
    ValueTrainConfig,
)

if TYPE_CHECKING:
    from recap_core.training.objectives import awr_weights, spo_flow_objective
    from recap_core.training.policy_training import train_policy
    from recap_core.training.value_training import train_value_function

_LAZY = {
    "awr_weights": "objectives",
    "spo_flow_objective": "objectives",
    "train_policy": "policy_training",
    "train_value_function": "value_training",
}
"""Names of the torch modules: module each is imported from on first use."""


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


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
