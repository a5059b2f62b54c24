"""Task-prompt embeddings that never download anything and still work for prompts never seen in training.

Words, word bigrams and character trigrams are hashed (crc32, stable across processes and machines)
into a fixed number of buckets and averaged by an ``nn.EmbeddingBag``. An unseen prompt shares n-grams
with known ones ("pick up the red cup" vs "pick the cup"), so it lands near them instead of on an
arbitrary vector; a pretrained language model would do better but would need weights at run time.
"""

from __future__ import annotations

import itertools
import re
import zlib
from collections.abc import Sequence

import torch
from torch import nn

_WORD = re.compile(r"[a-z0-9]+")


def prompt_token_ids(prompt: str, n_buckets: int) -> list[int]:
    """Hashed n-gram ids of a prompt (bucket 0 is reserved for the empty prompt)."""
    words = _WORD.findall(prompt.lower())
    tokens = [f"w:{w}" for w in words]
    tokens += [f"b:{a}_{b}" for a, b in itertools.pairwise(words)]
    for word in words:
        padded = f"#{word}#"
        tokens += [f"c:{padded[i : i + 3]}" for i in range(len(padded) - 2)]
    if not tokens:
        return [0]
    return [1 + zlib.crc32(token.encode()) % (n_buckets - 1) for token in tokens]


class HashedPromptEncoder(nn.Module):
    """Maps a batch of prompt strings to (B, dim) embeddings; token ids are cached per distinct prompt."""

    def __init__(self, dim: int = 64, n_buckets: int = 4096) -> None:
        super().__init__()
        if n_buckets < 2:
            raise ValueError(f"n_buckets must be >= 2, got {n_buckets}")
        self.dim = dim
        self.n_buckets = n_buckets
        self.bag = nn.EmbeddingBag(n_buckets, dim, mode="mean")
        nn.init.normal_(self.bag.weight, std=1.0)
        self._ids: dict[str, list[int]] = {}

    def _token_ids(self, prompt: str) -> list[int]:
        ids = self._ids.get(prompt)
        if ids is None:
            ids = prompt_token_ids(prompt, self.n_buckets)
            self._ids[prompt] = ids
        return ids

    def forward(self, prompts: Sequence[str]) -> torch.Tensor:
        slot: dict[str, int] = {}
        rows = [slot.setdefault(str(p), len(slot)) for p in prompts]
        flat: list[int] = []
        offsets: list[int] = []
        for prompt in slot:
            offsets.append(len(flat))
            flat.extend(self._token_ids(prompt))
        device = self.bag.weight.device
        unique = self.bag(
            torch.tensor(flat, dtype=torch.long, device=device),
            torch.tensor(offsets, dtype=torch.long, device=device),
        )
        return unique[torch.tensor(rows, dtype=torch.long, device=device)]
