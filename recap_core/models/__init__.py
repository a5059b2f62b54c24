"""Networks of the method: prompt encoding, backbones, image encoders, the distributional value function,
the flow policy."""

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
from recap_core.models.vision import ENCODERS, VisionConfig, register_encoder, save_encoder

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
