"""Advantage-conditioned flow-matching policy over action chunks a_{t:t+H}.

Path and target (rectified flow): x_tau = (1 - tau) * noise + tau * a, with the network regressing the
velocity u = a - noise; sampling integrates dx/dtau = v(x, tau) from noise (tau = 0) to an action chunk
(tau = 1) in K Euler steps. Actions are standardised per dimension, so one noise scale fits every robot.

Conditioning: the normalised observation, the task-prompt embedding, one feature vector per camera
when the network reads images (recap_core.models.vision), and an indicator token
(negative / positive / dropped). Training drops the indicator 30% of the time, so the same network is
both pi(a | o, l) (dropped) and pi(a | I, o, l). Sampling uses I = positive with one pass (beta = 1), or
classifier-free guidance v = v_uncond + beta (v_cond - v_uncond) for beta > 1. A policy trained without
the indicator (SFT, AWR, PPO baselines) always sees the dropped token.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from recap_core.models.backbones import build_backbone
from recap_core.models.config import FlowPolicyConfig, VisionConfig
from recap_core.models.normalisation import Normaliser
from recap_core.models.prompts import HashedPromptEncoder
from recap_core.models.vision import CameraInputs, image_tensors

INDICATOR_NEGATIVE = 0
INDICATOR_POSITIVE = 1
INDICATOR_DROPPED = 2


def time_features(tau: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of the flow time tau in [0, 1], (B,) -> (B, dim)."""
    half = dim // 2
    steps = torch.arange(half, device=tau.device, dtype=tau.dtype)
    freqs = torch.exp(steps * (-math.log(1000.0) / max(half, 1)))
    angles = tau[:, None] * freqs[None, :] * 2 * math.pi
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


def drop_indicators(
    tokens: torch.Tensor, rate: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Replace each indicator token by ``INDICATOR_DROPPED`` with probability ``rate`` (CFG training)."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"indicator dropout rate must be in [0, 1], got {rate}")
    # drawn on the generator's device (the CPU's in training), so a seed drops the same tokens anywhere
    drop = torch.rand(tokens.shape, generator=generator).to(tokens.device) < rate
    return torch.where(drop, torch.full_like(tokens, INDICATOR_DROPPED), tokens)


class FlowMatchingPolicy(nn.Module):
    """Velocity network v(x_tau, tau | o, l, I) plus the normalisers, prompt and image encoders it
    depends on. ``load_pretrained``: initialise image encoders from ``config.images.pretrained`` (a fresh
    network); False when the weights come from a checkpoint anyway."""

    def __init__(self, config: FlowPolicyConfig, load_pretrained: bool = True) -> None:
        super().__init__()
        if config.obs_dim < 1 or config.action_dim < 1:
            raise ValueError(
                f"obs_dim and action_dim must be >= 1, got {config.obs_dim}, {config.action_dim}: build "
                "from config.sized(obs_dim, action_dim)"
            )
        self.config = config
        self.obs_norm = Normaliser(config.obs_dim)
        self.action_norm = Normaliser(config.action_dim)
        self.prompts = HashedPromptEncoder(config.prompt_dim, config.prompt_buckets)
        self.indicator_embedding = nn.Embedding(3, config.indicator_dim)
        chunk = config.horizon * config.action_dim
        self.cameras = CameraInputs(config.images, load_pretrained)
        self.backbone = build_backbone(
            config.backbone,
            [
                config.obs_dim,
                config.prompt_dim,
                config.indicator_dim,
                config.time_dim,
                chunk,
                *self.cameras.dims,
            ],
            chunk,
            hidden=config.hidden,
            depth=config.depth,
            heads=config.heads,
        )

    # --- pieces -------------------------------------------------------------------------------------
    def context(
        self,
        observations: torch.Tensor,
        prompts: Sequence[str],
        images: Mapping[str, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, ...]:
        """What does not change along the flow: normalised observation, prompt embedding and one
        feature vector per camera (``images``: camera -> uint8 frames (B, H, W, C)), computed once per
        sample rather than once per Euler step."""
        cameras = self.cameras.features(images, observations.shape[0])
        return (self.obs_norm(observations), self.prompts(prompts), *cameras)

    def velocity(
        self,
        context: tuple[torch.Tensor, ...],
        indicator: torch.Tensor,
        tau: torch.Tensor,
        x: torch.Tensor,
    ) -> torch.Tensor:
        """Predicted velocity for noisy normalised chunks x (B, H, a) at flow times tau (B,)."""
        obs, prompt, *cameras = context
        out = self.backbone(
            [
                obs,
                prompt,
                self.indicator_embedding(indicator),
                time_features(tau, self.config.time_dim),
                x.flatten(1),
                *cameras,
            ]
        )
        return out.view_as(x)

    def per_sample_loss(
        self,
        context: tuple[torch.Tensor, ...],
        indicator: torch.Tensor,
        chunks: torch.Tensor,
        mask: torch.Tensor,
        tau: torch.Tensor,
        noise: torch.Tensor,
    ) -> torch.Tensor:
        """Flow-matching loss of each sample (B,), averaged over its valid (unpadded) chunk steps.

        With shared (tau, noise) the difference of two policies' losses is the one-step estimate of their
        log-likelihood ratio that the PPO-style baseline uses.
        """
        target = self.action_norm(chunks)
        x = (1.0 - tau[:, None, None]) * noise + tau[:, None, None] * target
        err = ((self.velocity(context, indicator, tau, x) - (target - noise)) ** 2).mean(-1)
        weight = mask.to(err.dtype)
        return (err * weight).sum(-1) / weight.sum(-1).clamp(min=1.0)

    # --- sampling -----------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        observations: torch.Tensor,
        prompts: Sequence[str],
        beta: float = 1.0,
        indicator: int | None = INDICATOR_POSITIVE,
        flow_steps: int | None = None,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
        images: Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Raw-unit action chunks (B, H, a). ``images``: the current frame of every camera the network
        reads (camera -> uint8 (B, H, W, C)).

        ``indicator=None`` samples the unconditional policy. beta = 1 is one conditional pass per Euler
        step; beta != 1 runs the conditional and unconditional passes as one doubled batch.
        """
        cfg = self.config
        batch = observations.shape[0]
        steps = flow_steps or cfg.flow_steps
        if steps < 1:
            raise ValueError(f"flow_steps must be >= 1, got {steps}")
        if noise is None:  # drawn on the generator's device (a CPU's), so a seed samples alike anywhere
            noise = torch.randn(batch, cfg.horizon, cfg.action_dim, generator=generator)
        x = noise.to(observations.device)
        ctx = self.context(observations, prompts, images)
        token = INDICATOR_DROPPED if (indicator is None or not cfg.conditioned) else indicator
        guided = token != INDICATOR_DROPPED and beta != 1.0
        if guided:
            ctx = tuple(torch.cat([part, part]) for part in ctx)
            tokens = torch.cat(
                [
                    torch.full((batch,), token, dtype=torch.long, device=x.device),
                    torch.full((batch,), INDICATOR_DROPPED, dtype=torch.long, device=x.device),
                ]
            )
        else:
            tokens = torch.full((batch,), token, dtype=torch.long, device=x.device)
        dt = 1.0 / steps
        for k in range(steps):
            tau = torch.full((tokens.shape[0],), k * dt, device=x.device)
            if guided:
                v_cond, v_uncond = self.velocity(ctx, tokens, tau, torch.cat([x, x])).chunk(2)
                v = v_uncond + beta * (v_cond - v_uncond)
            else:
                v = self.velocity(ctx, tokens, tau, x)
            x = x + dt * v
        return self.action_norm.inverse(x)


class FlowChunkPolicy:
    """``recap_core.policy_api.ChunkPolicy`` over a trained ``FlowMatchingPolicy`` (numpy in, numpy out)."""

    def __init__(
        self,
        net: FlowMatchingPolicy,
        beta: float = 1.0,
        flow_steps: int | None = None,
        seed: int = 0,
        indicator: int | None = INDICATOR_POSITIVE,
    ) -> None:
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        self.net = net.eval()
        self.beta = float(beta)
        self.flow_steps = flow_steps
        self.indicator = indicator
        self._generator = torch.Generator().manual_seed(seed)

    @property
    def horizon(self) -> int:
        return self.net.config.horizon

    @property
    def action_dim(self) -> int:
        return self.net.config.action_dim

    @property
    def obs_dim(self) -> int:
        return self.net.config.obs_dim

    @property
    def vision(self) -> VisionConfig:
        """The cameras (and frame size) ``act`` needs frames of; none for a state-only policy."""
        return self.net.config.images

    def act(
        self,
        observations: np.ndarray,
        prompts: Sequence[str],
        images: Mapping[str, np.ndarray] | None = None,
    ) -> np.ndarray:
        """``images``: camera -> the current uint8 frames (B, H, W, C), for a policy that reads cameras."""
        obs = np.asarray(observations, dtype=np.float32)
        if obs.ndim != 2 or obs.shape[1] != self.net.config.obs_dim:
            raise ValueError(f"observations must be (B, {self.net.config.obs_dim}), got {obs.shape}")
        if len(prompts) != len(obs):
            raise ValueError(f"got {len(prompts)} prompts for {len(obs)} observations")
        cameras = self.vision.cameras
        missing = [c for c in cameras if c not in (images or {})]
        if missing:
            raise ValueError(
                f"this policy expects {self.vision.layout()}: pass images= with the current frames of "
                f"{missing} (given: {sorted(images or {})})"
            )
        device = self.net.action_norm.mean.device  # where the network is (the CPU unless moved)
        frames = image_tensors(images, cameras) if cameras else None
        with torch.inference_mode():
            chunks = self.net.sample(
                torch.from_numpy(obs).to(device),
                list(prompts),
                beta=self.beta,
                indicator=self.indicator,
                flow_steps=self.flow_steps,
                generator=self._generator,
                images={c: f.to(device) for c, f in frames.items()} if frames else None,
            )
        return chunks.float().cpu().numpy()
