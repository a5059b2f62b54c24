"""The policy-extraction methods of the study and every fact about them, in one table.

RECAP conditions the policy on the improvement indicator I_t; the baselines extract a policy from the same
data without it: SFT ignores advantages, AWR weights each step by exp(A / T), PPO uses the advantages in
the SPO trust-region objective against the policy that collected the data.

The names are stored (a checkpoint's ``method``, the ledger's and the derived tables' ``method`` column,
the checkpoint folders), so they never change. Everything else reads them from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class Method(StrEnum):
    """A policy-extraction method; the value is its stored name."""

    RECAP = "recap"
    SFT = "sft"
    AWR = "awr"
    PPO = "ppo"


@dataclass(frozen=True)
class MethodFacts:
    """What a method needs and what the study does with it.

    ``conditioned``: the policy sees the indicator token (the others always see the "dropped" token).
    ``uses_advantages``: trained on A_t under V^k, read back aligned step by step.
    ``needs_reference``: trained against a frozen reference, the policy that collected the data.
    ``baseline``: a comparison method of the study, finetuned from pi_pre on pi^k's data and budget.
    ``indicator_mode``: ``indicators(mode=name)`` labels steps the method's way (RECAP thresholds A_t,
    SFT labels every step True: the paper's first finetune on demonstrations).
    ``ledger``: the ledger methods its policies are evaluated under, in the report's order.
    """

    conditioned: bool
    uses_advantages: bool
    needs_reference: bool
    baseline: bool
    indicator_mode: bool
    ledger: tuple[str, ...]


RECAP_UNGUIDED = "recap_beta1"
"""pi^k itself evaluated with I = positive and no guidance (beta = 1): separates conditioning from CFG."""

EXPERT = "expert"
"""A ledger method for the scripted expert's evaluations (no trained policy)."""

METHOD_FACTS: Mapping[Method, MethodFacts] = MappingProxyType(
    {
        Method.RECAP: MethodFacts(
            conditioned=True,
            uses_advantages=False,  # through the indicators, which are made from them beforehand
            needs_reference=False,
            baseline=False,
            indicator_mode=True,
            ledger=(Method.RECAP.value, RECAP_UNGUIDED),
        ),
        Method.SFT: MethodFacts(
            conditioned=False,
            uses_advantages=False,
            needs_reference=False,
            baseline=True,
            indicator_mode=True,
            ledger=(Method.SFT.value,),
        ),
        Method.AWR: MethodFacts(
            conditioned=False,
            uses_advantages=True,
            needs_reference=False,
            baseline=True,
            indicator_mode=False,
            ledger=(Method.AWR.value,),
        ),
        Method.PPO: MethodFacts(
            conditioned=False,
            uses_advantages=True,
            needs_reference=True,
            baseline=True,
            indicator_mode=False,
            ledger=(Method.PPO.value,),
        ),
    }
)

BASELINES: tuple[Method, ...] = tuple(m for m in Method if METHOD_FACTS[m].baseline)
INDICATOR_MODES: tuple[Method, ...] = tuple(m for m in Method if METHOD_FACTS[m].indicator_mode)
REPORT_ORDER: tuple[str, ...] = tuple(name for m in Method for name in METHOD_FACTS[m].ledger)
"""The ledger methods of the study's policies, in the order the report lists them."""
LEDGER_METHODS: tuple[str, ...] = (*REPORT_ORDER, EXPERT)


def method(name: str) -> Method:
    """The method of a stored name; an unknown name is refused, listing the known ones."""
    try:
        return Method(name)
    except ValueError:
        raise ValueError(f"method must be one of {tuple(m.value for m in Method)}, got {name!r}") from None


def facts(name: str) -> MethodFacts:
    return METHOD_FACTS[method(name)]
