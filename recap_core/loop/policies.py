"""pi^k as the collectors and the evaluator drive it: this project's flow policy loaded in process, or an
external trainer's policy served by its own environment over openpi's protocol for the block's duration.

Which one a checkpoint is, is a fact of its files (an external one carries recap_external.json), not of
the current settings; the settings only say how to start the external server.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from recap_core.checkpoints import load_policy
from recap_core.checkpoints.external import is_external, read_external_manifest
from recap_core.loop.settings import LoopSettings
from recap_core.policy_api import ChunkPolicy

EXTERNAL_BETA = 1.0  # guidance needs the external model's own sampler: its policies run at beta = 1


def sampling_beta(policy_dir: Path, beta: float) -> float:
    """The beta ``policy_dir`` is actually sampled with (what the ledger must record)."""
    return EXTERNAL_BETA if is_external(policy_dir) else float(beta)


@contextmanager
def opened_policy(
    settings: LoopSettings, policy_dir: Path, task: str, beta: float, seed: int
) -> Iterator[ChunkPolicy]:
    """The policy of ``policy_dir`` ready to act, for the block's duration."""
    if not is_external(policy_dir):
        yield load_policy(policy_dir, beta=beta, seed=seed)
        return
    from recap_core.external.serving import served_external_policy

    config = settings.external_policy
    if not config.serve:
        trainer = read_external_manifest(policy_dir).get("name", "?")
        raise ValueError(
            f"{policy_dir} was trained by the external trainer {trainer!r} (recap_external.json), and the "
            "settings name no external_policy.serve command to serve it with"
        )
    with served_external_policy(
        config,
        policy_dir,
        task,
        seed,
        cameras=tuple(settings.cameras),
        image_size=settings.image_size if settings.cameras else 0,
    ) as policy:
        yield policy
