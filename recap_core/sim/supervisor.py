"""The human-gated intervention rule: when a watched rollout stalls or heads for failure, the expert
takes over for a stretch and then hands control back.

The rule is evaluated inside the environment worker at every policy step, so a takeover can start in the
middle of an action chunk (the rest of the chunk is discarded, as a human grabbing the controls would).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SupervisorConfig:
    """Which rollouts are watched and when the watching human intervenes."""

    share: float = 0.5  # share of rollouts a human watches (decided per seed, reproducibly)
    window: int = 20  # steps looked back for stall and disagreement
    stall_tolerance: float = 0.005  # stalled: no observation entry moved more than this over the window
    disagreement_threshold: float = 0.9  # mean L2 distance between policy and expert action over the window
    time_fraction: float = 0.75  # running out of time: no success after this share of max_steps
    takeover_steps: int = 25  # how long the expert keeps control each time
    cooldown_steps: int = 10  # policy steps after a hand-back before the human may intervene again
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"SupervisorConfig.share must be in [0, 1], got {self.share}")
        for name in ("window", "takeover_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"SupervisorConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.time_fraction <= 1.0:
            raise ValueError(f"SupervisorConfig.time_fraction must be in (0, 1], got {self.time_fraction}")

    def watches(self, seed: int) -> bool:
        """Whether the rollout from ``seed`` is watched; independent of batch and worker layout."""
        if self.share <= 0.0:
            return False
        return bool(np.random.default_rng([self.seed, seed, 0x5EE]).random() < self.share)


class Watch:
    """Per-episode supervisor state for one watched rollout."""

    __slots__ = ("config", "cooldown", "disagreement", "filled", "max_steps", "position", "takeovers")

    def __init__(self, config: SupervisorConfig, max_steps: int) -> None:
        self.config = config
        self.max_steps = max_steps
        self.disagreement = np.zeros(config.window)
        self.position = 0
        self.filled = 0
        self.cooldown = 0
        self.takeovers = 0

    def should_take_over(
        self, t: int, observations: np.ndarray, policy_action: np.ndarray, expert_action: np.ndarray
    ) -> str | None:
        """The reason to take over before policy step ``t`` (``observations[:t+1]`` are filled), or None."""
        c = self.config
        self.disagreement[self.position] = float(np.linalg.norm(policy_action - expert_action))
        self.position = (self.position + 1) % c.window
        self.filled = min(self.filled + 1, c.window)
        if self.cooldown > 0:
            self.cooldown -= 1
            return None
        if t >= c.time_fraction * self.max_steps:
            return "time"
        if self.filled == c.window and self.disagreement.mean() > c.disagreement_threshold:
            return "disagreement"
        if t >= c.window and np.abs(observations[t] - observations[t - c.window]).max() < c.stall_tolerance:
            return "stall"
        return None

    def handed_back(self) -> None:
        self.takeovers += 1
        self.cooldown = self.config.cooldown_steps
        self.filled = 0
        self.position = 0
