"""What the Dagster UI says each asset and check does, built from the settings it describes.

The numbers (N, the target fractions, the bins, the dropout rate, the trust region, the check limits)
are read from LoopSettings' defaults and the checks' own constants, so the UI cannot drift from the code.
A preset changes sizes, never these rules, so the defaults are what every run uses unless a user
overrides a rule on purpose (which the asset's metadata then shows).
"""

from assets.checks import POSITIVE_FRACTION_TOLERANCE
from recap_core.loop.settings import LoopSettings
from recap_core.loop.value_diagnostics import VALUE_RISES_MIN_SHARE

_DEFAULTS = LoopSettings()
_VALUE = _DEFAULTS.value_pretrain.architecture
_POLICY = _DEFAULTS.policy_finetune
_PRETRAIN_TARGET = f"{_DEFAULTS.pretrain_positive_fraction:.0%}"
_FINETUNE_TARGET = f"{_DEFAULTS.finetune_positive_fraction:.0%}"
_TOLERANCE = f"{POSITIVE_FRACTION_TOLERANCE * 100:g} points"

VALUE_PRETRAINED = (
    f"V_pre: the multi-task distributional value function ({_VALUE.n_bins} bins on "
    f"({_VALUE.value_min:g}, {_VALUE.value_max:g})) on all demos."
)
PRETRAINING_INDICATORS = (
    f"Full-episode advantages R_t - V_pre(o_t), per-task thresholds at {_PRETRAIN_TARGET} positive, "
    "indicators."
)
PRETRAINING_FRACTION_CHECK = (
    f"Per task, the share of demonstration steps labelled positive is within {_TOLERANCE} of the "
    f"{_PRETRAIN_TARGET} target (paper Appendix F)."
)
ADVANTAGES = (
    f"A_t = sum of N rewards + V(o_{{t+N}}) - V(o_t) (N = {_DEFAULTS.lookahead}, truncated at the "
    "episode end)."
)
VALUE_RISES_CHECK = (
    f"In at least {VALUE_RISES_MIN_SHARE:.0%} of successful episodes V is higher over the last quarter "
    "than over the first: the value function sees progress."
)
INDICATORS = f"Per-task threshold ({_FINETUNE_TARGET} positive by default) and improvement indicators."
FINETUNE_FRACTION_CHECK = (
    f"The share of iteration k's own rollout steps labelled positive is within {_TOLERANCE} of the "
    f"task's target ({_FINETUNE_TARGET} by default); not applicable at k = 0 (SFT)."
)
POLICY = (
    "pi^k finetuned from pi_pre (never from pi^{k-1}); indicator dropped "
    f"{_POLICY.indicator_dropout:.0%} of the time."
)
BASELINES = (
    f"SFT, AWR and PPO (SPO trust region {_POLICY.ppo_trust_region:g} against the data-collecting "
    "policy) finetuned from pi_pre on V^k's data and advantages with pi^k's gradient-step budget, and "
    "pi^k at beta = 1, evaluated on the held-out seeds into the ledger."
)
LABELLED_DATASET = (
    "The data pi^k trains on as a LeRobot v3.0 dataset for another trainer (lerobot-train, openpi): "
    "per frame value, advantage and indicator, and the indicator as text appended to the task prompt "
    f"(dropped {_POLICY.indicator_dropout:.0%} of the time, deterministically). Materialised on demand."
)
