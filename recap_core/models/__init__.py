"""Networks of the method: prompt encoding, backbones, the distributional value function, the flow policy."""

from recap_core.models.backbones import BACKBONES, build_backbone, register_backbone
from recap_core.models.flow_policy import (
    INDICATOR_DROPPED,
    INDICATOR_NEGATIVE,
    INDICATOR_POSITIVE,
    FlowChunkPolicy,
    FlowMatchingPolicy,
    FlowPolicyConfig,
)
from recap_core.models.normalisation import Normaliser
from recap_core.models.prompts import HashedPromptEncoder, prompt_token_ids
from recap_core.models.value import DistributionalValueFunction, ValueNetConfig, expected_value, two_hot

__all__ = [
    "BACKBONES",
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
    "build_backbone",
    "expected_value",
    "prompt_token_ids",
    "register_backbone",
    "two_hot",
]
