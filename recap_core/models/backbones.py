"""Pluggable trunks. Every backbone maps a list of per-sample feature vectors to one output vector.

The value function feeds [observation, prompt]; the policy feeds [observation, prompt, indicator, flow
time, noisy chunk]. An MLP concatenates them; the transformer turns each into a token, which is how a
larger vision-language backbone would see them. Add your own (e.g. one that owns an image encoder) with
``register_backbone``; its name is stored in the checkpoint's config.json.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn


class MLPBackbone(nn.Module):
    """Concatenate the inputs; residual SiLU blocks with LayerNorm."""

    def __init__(
        self, input_dims: Sequence[int], out_dim: int, hidden: int = 256, depth: int = 3, **_: object
    ):
        super().__init__()
        self.inp = nn.Linear(sum(input_dims), hidden)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.LayerNorm(hidden), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden)
            )
            for _ in range(max(depth - 1, 0))
        )
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.SiLU(), nn.Linear(hidden, out_dim))

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        h = self.inp(torch.cat(list(features), dim=-1))
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)


class TransformerBackbone(nn.Module):
    """One token per input (linear projection + learned type embedding) plus a readout token."""

    def __init__(
        self,
        input_dims: Sequence[int],
        out_dim: int,
        hidden: int = 128,
        depth: int = 2,
        heads: int = 4,
        **_: object,
    ):
        super().__init__()
        self.proj = nn.ModuleList(nn.Linear(d, hidden) for d in input_dims)
        self.type_embedding = nn.Parameter(torch.randn(len(input_dims) + 1, hidden) * 0.02)
        layer = nn.TransformerEncoderLayer(
            hidden, heads, dim_feedforward=2 * hidden, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, out_dim))

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        batch = features[0].shape[0]
        tokens = [proj(f) for proj, f in zip(self.proj, features, strict=True)]
        readout = torch.zeros(batch, self.type_embedding.shape[1], device=features[0].device)
        x = torch.stack([readout, *tokens], dim=1) + self.type_embedding
        return self.out(self.encoder(x)[:, 0])


BackboneFactory = Callable[..., nn.Module]
BACKBONES: dict[str, BackboneFactory] = {"mlp": MLPBackbone, "transformer": TransformerBackbone}


def register_backbone(name: str, factory: BackboneFactory) -> None:
    """Make ``factory(input_dims, out_dim, hidden=, depth=, heads=)`` available by name in configs."""
    BACKBONES[name] = factory


def build_backbone(
    name: str, input_dims: Sequence[int], out_dim: int, hidden: int, depth: int, heads: int = 4
) -> nn.Module:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; registered: {sorted(BACKBONES)}")
    return BACKBONES[name](input_dims, out_dim, hidden=hidden, depth=depth, heads=heads)
