"""The distributional value function p(V | o, task) over B bins spanning [value_min, value_max].

A categorical head trained by cross-entropy keeps multi-modal returns (the same state succeeds in some
episodes and fails in others) instead of averaging them away the way a squared loss does; the value is
its expectation V = sum_b p(b) v(b).

Discretisation: two-hot. A target R between neighbouring bin centres v_i <= R <= v_{i+1} puts weight
(v_{i+1} - R) / dv on bin i and the rest on bin i+1, so decoding the target distribution gives back R
exactly (no quantisation error of up to half a bin as with nearest-bin encoding).

Time-aware (``time_aware``, on for every new network): episodes end at a time limit, and a failure's
return is "minus the steps left until the time-out, minus C_fail". The steps left are not visible in the
observation, so a value of the observation alone averages over them: it overrates the states just before
a time-out and underrates early ones, and the advantages then favour exactly the last steps of failed
episodes. Feeding the episode's progress t / L (Pardo et al., "Time Limits in Reinforcement Learning",
2018) makes the Monte-Carlo target predictable from the input, so failure tails get no bonus.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from recap_core.models.backbones import build_backbone
from recap_core.models.config import ValueNetConfig
from recap_core.models.normalisation import Normaliser
from recap_core.models.prompts import HashedPromptEncoder
from recap_core.models.vision import CameraInputs


def bin_support(n_bins: int, value_min: float, value_max: float) -> torch.Tensor:
    """Bin centres, evenly spaced with the first on value_min and the last on value_max."""
    return torch.linspace(value_min, value_max, n_bins)


def two_hot(values: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """(B,) values -> (B, n_bins) two-hot target distributions (values clipped to the support)."""
    n_bins = support.shape[0]
    value_min, value_max = float(support[0]), float(support[-1])
    pos = (values.clamp(value_min, value_max) - value_min) / (value_max - value_min) * (n_bins - 1)
    lower = pos.floor().long().clamp(0, n_bins - 1)
    upper = (lower + 1).clamp(max=n_bins - 1)
    upper_weight = pos - lower.to(pos.dtype)
    target = torch.zeros(values.shape[0], n_bins, dtype=values.dtype, device=values.device)
    target.scatter_add_(1, lower[:, None], (1.0 - upper_weight)[:, None])
    target.scatter_add_(1, upper[:, None], upper_weight[:, None])
    return target


def expected_value(logits: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """V = sum_b softmax(logits)_b * v_b."""
    return torch.softmax(logits, dim=-1) @ support


class DistributionalValueFunction(nn.Module):
    """One multi-task network: raw observation + task prompt (+ camera frames) -> logits over value bins.

    ``load_pretrained``: initialise image encoders from ``config.images.pretrained`` (a fresh network);
    False when the weights come from a checkpoint anyway.
    """

    def __init__(self, config: ValueNetConfig, load_pretrained: bool = True) -> None:
        super().__init__()
        if config.obs_dim < 1:
            raise ValueError(f"obs_dim must be >= 1, got {config.obs_dim}: build from config.sized(obs_dim)")
        self.config = config
        self.obs_norm = Normaliser(config.obs_dim)
        self.prompts = HashedPromptEncoder(config.prompt_dim, config.prompt_buckets)
        self.cameras = CameraInputs(config.images, load_pretrained)
        inputs = [config.obs_dim, config.prompt_dim, *([1] if config.time_aware else []), *self.cameras.dims]
        self.backbone = build_backbone(
            config.backbone,
            inputs,
            config.n_bins,
            hidden=config.hidden,
            depth=config.depth,
            heads=config.heads,
        )
        self.register_buffer("support", bin_support(config.n_bins, config.value_min, config.value_max))

    def logits(
        self,
        observations: torch.Tensor,
        prompts: Sequence[str],
        progress: torch.Tensor | None = None,
        images: Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``progress``: t / L per observation, (B,); required by a time-aware network. ``images``:
        camera -> uint8 frames (B, H, W, C); required for every camera the network reads."""
        features = [self.obs_norm(observations), self.prompts(prompts)]
        if self.config.time_aware:
            if progress is None:
                raise ValueError("this value network is time-aware: pass progress = t / L per observation")
            features.append(progress.reshape(-1, 1).to(observations.dtype))
        features += self.cameras.features(images, observations.shape[0])
        return self.backbone(features)

    def forward(
        self,
        observations: torch.Tensor,
        prompts: Sequence[str],
        progress: torch.Tensor | None = None,
        images: Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Expected value per observation, (B,)."""
        return expected_value(self.logits(observations, prompts, progress, images), self.support)

    def loss(
        self,
        observations: torch.Tensor,
        prompts: Sequence[str],
        returns: torch.Tensor,
        progress: torch.Tensor | None = None,
        images: Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Mean cross-entropy against two-hot encoded Monte-Carlo returns."""
        log_p = torch.log_softmax(self.logits(observations, prompts, progress, images), dim=-1)
        return -(two_hot(returns, self.support) * log_p).sum(-1).mean()
