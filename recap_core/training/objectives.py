"""Per-method policy objectives on per-sample flow-matching losses (RECAP/SFT plain mean, AWR, PPO)."""

from __future__ import annotations

import numpy as np
import torch


def awr_weights(
    advantages: np.ndarray, temperature: float | None = None, max_weight: float = 20.0
) -> np.ndarray:
    """min(exp((A - mean A) / T), ``max_weight``), then normalised to mean 1 over the data (float32).

    Centring makes the clip independent of the advantages' offset. T = None uses the std of the
    advantages: normalised advantages are O(0.01), where a fixed T = 1 would turn AWR into plain
    behaviour cloning and an unfair baseline.
    """
    advantages = np.asarray(advantages, dtype=np.float64)
    if not np.all(np.isfinite(advantages)):
        raise ValueError("AWR advantages contain NaN or inf")
    if temperature is None:
        temperature = float(advantages.std()) or 1.0
    if temperature <= 0:
        raise ValueError(f"AWR temperature must be > 0, got {temperature}")
    exponent = np.minimum((advantages - advantages.mean()) / temperature, np.log(max_weight))
    weights = np.exp(exponent)
    return (weights / weights.mean()).astype(np.float32)


def ppo_flow_surrogate(
    loss_new: torch.Tensor,
    loss_old: torch.Tensor,
    advantages: torch.Tensor,
    clip: float = 0.2,
    likelihood_scale: float = 1.0,
) -> torch.Tensor:
    """Clipped PPO surrogate (to minimise) with log-ratio = scale * (L_old - L_new).

    The one-step flow-matching loss bounds -log pi(a | o) up to constants, so at shared (tau, noise) the
    difference of two policies' per-sample losses estimates their log-likelihood ratio (appendix D).
    """
    ratio = torch.exp((likelihood_scale * (loss_old - loss_new)).clamp(-20.0, 20.0))
    unclipped = ratio * advantages
    clipped = ratio.clamp(1.0 - clip, 1.0 + clip) * advantages
    return -torch.minimum(unclipped, clipped).mean()
