"""Every seed of a run, derived in one place from the settings' two: ``seed`` and ``demo_seed_start``.

Two kinds of seed matter. Initial-state seeds (recap_core/seeds.py) say which episodes exist: the
demonstrations take ``demos_per_task`` training seeds from ``demo_seed_start``, and iteration k's rollouts
their own block ``rollout_seed_stride`` further on, so iteration k never re-collects iteration k-1's
episodes. Randomness seeds make training and sampling repeatable: every network, the policy's sampling
during collection and evaluation, and the supervisor who decides when to take over. A replicate of a
study shifts both (its own episodes, its own networks) and keeps the evaluation seeds, so every replicate
is scored on the same held-out states.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from recap_core.loop.settings import LoopSettings
from recap_core.seeds import train_seeds

# Replicate r draws its demonstrations and rollouts from its own block of the training seed range (and
# seeds its networks with seed + r); evaluation uses the same test seeds for every replicate.
REPLICATE_SEED_STRIDE = 100_000
MAX_REPLICATES = 9  # K <= 4 iterations of rollouts fit in one 100,000-seed block; 10 blocks fit the range


@dataclass(frozen=True)
class RunSeeds:
    """The seeds one run uses, each named for what it decides."""

    settings: LoopSettings

    @property
    def value_network(self) -> int:
        """V_pre and every V^k (finetuned from V_pre, so one seed serves both)."""
        return self.settings.seed

    def policy_network(self, iteration: int | None = None) -> int:
        """pi_pre (``iteration`` None) and pi^k, whose minibatch order and dropout differ per iteration."""
        return self.settings.seed + (iteration or 0)

    def rollout_sampling(self, iteration: int) -> int:
        """The flow policy's noise while pi^{k-1} collects iteration k's rollouts."""
        return self.settings.seed + iteration

    @property
    def evaluation_sampling(self) -> int:
        return self.settings.seed

    @property
    def supervisor(self) -> int:
        """Which rollouts a human watches and when they take over."""
        return self.settings.seed

    def demonstrations(self) -> list[int]:
        """Initial states of the operator's demonstrations of every task."""
        return train_seeds(self.settings.demos_per_task, self.settings.demo_seed_start)

    def rollout_start(self, iteration: int) -> int:
        """First seed of iteration k's block of the training seed range (the CLI's default too)."""
        return self.settings.demo_seed_start + iteration * self.settings.rollout_seed_stride

    def rollouts(self, iteration: int) -> list[int]:
        """Initial states of iteration k's rollouts: their own block of the training seed range."""
        return train_seeds(self.settings.rollouts_per_iteration, self.rollout_start(iteration))

    def used_for_training(self, iteration: int) -> set[int]:
        """Every initial state the task's training data of iterations <= k came from."""
        seeds = set(self.demonstrations())
        for k in range(1, iteration + 1):
            seeds.update(self.rollouts(k))
        return seeds


def run_seeds(settings: LoopSettings) -> RunSeeds:
    return RunSeeds(settings)


def replicate_settings(settings: LoopSettings, replicate: int) -> LoopSettings:
    """Replicate ``replicate`` of a study: other training seeds, other network seeds, same test seeds."""
    if not 0 <= replicate < MAX_REPLICATES:
        raise ValueError(f"replicate must be in [0, {MAX_REPLICATES}), got {replicate}")
    return dataclasses.replace(
        settings,
        seed=settings.seed + replicate,
        demo_seed_start=settings.demo_seed_start + replicate * REPLICATE_SEED_STRIDE,
    )
