"""Networks of the method: prompt encoding, backbones, image encoders, the distributional value function,
the flow policy.

Their configurations (recap_core.models.config) are plain dataclasses and load with the package; the
networks load torch, so they are imported the first time one of their names is asked for (PEP 562): the
loop's settings and a pipeline's definitions read the configurations without paying for torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from recap_core.models.config import FlowPolicyConfig, ValueNetConfig, VisionConfig

if TYPE_CHECKING:
    from recap_core.models.backbones import BACKBONES, build_backbone, register_backbone
    from recap_core.models.flow_policy import (
        INDICATOR_DROPPED,
        INDICATOR_NEGATIVE,
        INDICATOR_POSITIVE,
        FlowChunkPolicy,
        FlowMatchingPolicy,
    )
    from recap_core.models.normalisation import Normaliser
    from recap_core.models.prompts import HashedPromptEncoder, prompt_token_ids
    from recap_core.models.value import DistributionalValueFunction, expected_value, two_hot
    from recap_core.models.vision import ENCODERS, register_encoder, save_encoder

_LAZY = {
    "BACKBONES": "backbones",
    "build_backbone": "backbones",
    "register_backbone": "backbones",
    "INDICATOR_DROPPED": "flow_policy",
    "INDICATOR_NEGATIVE": "flow_policy",
    "INDICATOR_POSITIVE": "flow_policy",
    "FlowChunkPolicy": "flow_policy",
    "FlowMatchingPolicy": "flow_policy",
    "Normaliser": "normalisation",
    "HashedPromptEncoder": "prompts",
    "prompt_token_ids": "prompts",
    "DistributionalValueFunction": "value",
    "expected_value": "value",
    "two_hot": "value",
    "ENCODERS": "vision",
    "register_encoder": "vision",
    "save_encoder": "vision",
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
    "BACKBONES",
    "ENCODERS",
    "INDICATOR_DROPPED",
    "INDICATOR_NEGATIVE",
    "INDICATOR_POSITIVE",
    "DistributionalValueFunction",
    "FlowChunkPolicy",
    "FlowMatchingPolicy",
    "FlowPolicyConfig",
    "HashedPromptEncoder",
    "Normaliser",
    "ValueNetConfig",
    "VisionConfig",
    "build_backbone",
    "expected_value",
    "prompt_token_ids",
    "register_backbone",
    "register_encoder",
    "save_encoder",
    "two_hot",
]
