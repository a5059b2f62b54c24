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
    weights = awr_unnormalised_weights(advantages, float(advantages.mean()), temperature, max_weight)
    return (weights / weights.mean()).astype(np.float32)


def awr_unnormalised_weights(
    advantages: np.ndarray, mean: float, temperature: float, max_weight: float
) -> np.ndarray:
    """min(exp((A - mean) / T), max_weight) with the data's mean given: streamed data computes the mean,
    and the mean of these weights that normalises them, in passes over every shard."""
    if temperature <= 0:
        raise ValueError(f"AWR temperature must be > 0, got {temperature}")
    advantages = np.asarray(advantages, dtype=np.float64)
    return np.exp(np.minimum((advantages - mean) / temperature, np.log(max_weight)))


def spo_flow_objective(
    loss_new: torch.Tensor,
    loss_ref: torch.Tensor,
    advantages: torch.Tensor,
    trust_region: float = 0.01,
    likelihood_scale: float = 1.0,
) -> torch.Tensor:
    """The paper's PPO baseline (Appendix D, flow-matching part of Eq. 11), as a loss to minimise.

    SPO-style: maximise r A - |A| / (2 eps) (r - 1)^2 with eps = ``trust_region`` (0.01). The quadratic
    penalty keeps the ratio near 1 for every sample (the optimum of each term is r = 1 + eps sign(A)),
    unlike PPO clipping, whose gradient vanishes outside the clip range. The likelihood ratio
    r = exp(scale (L_ref - L_new)) uses the single-step flow-matching loss at shared (tau, noise) as
    -log pi(a | o) up to a constant, with L_ref the data-collecting reference policy's loss.
    """
    if trust_region <= 0:
        raise ValueError(f"PPO trust region must be > 0, got {trust_region}")
    ratio = torch.exp((likelihood_scale * (loss_ref - loss_new)).clamp(-20.0, 20.0))
    penalty = advantages.abs() / (2.0 * trust_region) * (ratio - 1.0) ** 2
    return -(ratio * advantages - penalty).mean()
