"""Cross-fitted values: each episode's V(o_t) from a value function that did not train on it.

The paper's rule (and this pipeline's default) trains V^k on the task's data and then labels that same
data: a value function that memorises its training episodes predicts each one's own return, which drives
every advantage towards 0 and the indicators towards noise. K-fold cross-fitting splits the episodes
into folds by a hash of their id (stable as data is added: an episode keeps its fold), trains one value
function per fold exactly as V^k is trained (finetuned from V_pre, the same configuration and seed) on
the other folds, and values each fold's episodes with the model that never saw them. V^k itself is
still trained and published (it collects nothing, but deploy-time diagnostics and the held-out check
read it); the fold models are recomputed deterministically from the same inputs, not stored.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from recap_core.checkpoints import predict_values
from recap_core.steps import StepArrays
from recap_core.training import train_value_function
from recap_core.training.config import ValueTrainConfig


def episode_folds(episode_ids: list[str], folds: int) -> np.ndarray:
    """Each episode's fold (0..folds-1) from a hash of its id: the same episode is always in the same fold."""
    if folds < 2:
        raise ValueError(f"cross-fitting needs at least 2 folds, got {folds}")
    return np.array([int(hashlib.sha256(e.encode()).hexdigest()[:8], 16) % folds for e in episode_ids])


def cross_fitted_values(
    steps: StepArrays, folds: int, config: ValueTrainConfig, parent: Path | None = None
) -> tuple[np.ndarray, list[int]]:
    """V(o_t) for every step, each episode's from the fold model trained without it; with the number of
    episodes each fold model held out (``parent``: the checkpoint the fold models finetune, V_pre in the
    loop; None: from scratch). A fold holding every episode (too few episodes) is refused."""
    fold_of = episode_folds(steps.episodes["episode_id"].to_list(), folds)
    values = np.empty(len(steps), dtype=np.float32)
    held_out = []
    for fold in range(folds):
        held = fold_of == fold
        held_out.append(int(held.sum()))
        if not held.any():
            continue
        if held.all():
            raise ValueError(
                f"cross-fitting with {folds} folds: fold {fold} holds all {len(held)} episodes, so its value "
                "function would train on none: use fewer folds or collect more episodes"
            )
        model, _ = train_value_function(steps.select_episodes(~held), config, init_from=parent)
        index = np.flatnonzero(held[steps.episode_index])
        values[index] = predict_values(model, steps, index=index)
    return values, held_out
