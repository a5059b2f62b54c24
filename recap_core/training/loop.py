"""One seeded minibatch loop with a held-out split and early stopping, shared by every trainer."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from recap_core.steps import StepArrays
from recap_core.training.config import LoopConfig, TrainingHistory

# loss_fn(flat step indices, generator, training) -> scalar loss
LossFn = Callable[[np.ndarray, torch.Generator, bool], torch.Tensor]


def split_episodes(steps: StepArrays, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat step indices of (train, held-out); whole episodes go to one side so nothing leaks.

    Held-out episodes are drawn per task, so every task is represented on both sides when it has at
    least two episodes.
    """
    rng = np.random.default_rng(seed)
    tasks = np.asarray(steps.episodes["task"].to_list())
    held_out = np.zeros(len(tasks), dtype=bool)
    if val_fraction > 0:
        for task in sorted(set(tasks.tolist())):
            rows = np.flatnonzero(tasks == task)
            n_val = round(val_fraction * len(rows))
            n_val = min(max(n_val, 1), len(rows) - 1) if len(rows) >= 2 else 0
            held_out[rng.choice(rows, size=n_val, replace=False)] = True
    step_held_out = held_out[steps.episode_index]
    return np.flatnonzero(~step_held_out), np.flatnonzero(step_held_out)


def fit(
    model: nn.Module,
    loss_fn: LossFn,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    config: LoopConfig,
    desc: str,
    on_epoch_start: Callable[[int], None] | None = None,
) -> TrainingHistory:
    """Train ``model`` in place; the final weights follow ``config.weights`` (best held-out or last)."""
    if len(train_idx) == 0:
        raise ValueError("no training steps: the training split is empty")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    batch = min(config.batch_size, len(train_idx))
    per_epoch = config.steps_per_epoch or math.ceil(len(train_idx) / batch)
    history = TrainingHistory(n_train_steps=len(train_idx), n_val_steps=len(val_idx), weights=config.weights)
    keep_best = config.weights == "best_heldout"
    best = math.inf
    best_state: dict | None = None
    bad_epochs = 0
    samples = 0
    start = time.perf_counter()
    bar = tqdm(total=config.epochs * per_epoch, desc=desc, disable=not config.progress, leave=False)
    for epoch in range(config.epochs):
        if on_epoch_start is not None:
            on_epoch_start(epoch)
        model.train()
        order = np.concatenate(
            [rng.permutation(train_idx) for _ in range(math.ceil(per_epoch * batch / len(train_idx)))]
        )
        losses = []
        for step in range(per_epoch):
            idx = order[step * batch : (step + 1) * batch]
            loss = loss_fn(idx, generator, True)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{desc}: loss became {loss.item()} at epoch {epoch}, step {step}")
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimiser.step()
            losses.append(loss.item())
            history.gradient_steps += 1
            samples += len(idx)
            bar.update(1)
        history.train_loss.append(float(np.mean(losses)))
        if len(val_idx) == 0:
            continue
        val = evaluate(model, loss_fn, val_idx, batch, config.seed)
        history.val_loss.append(val)
        bar.set_postfix(train=f"{history.train_loss[-1]:.4f}", val=f"{val:.4f}")
        if not keep_best:
            continue
        if val < best - config.min_delta:
            best, best_state, bad_epochs = val, copy.deepcopy(model.state_dict()), 0
            history.best_epoch = epoch
        else:
            bad_epochs += 1
            if bad_epochs >= config.patience:
                history.stopped_early = True
                break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        history.best_epoch = history.epochs_run - 1
    model.eval()
    history.seconds = time.perf_counter() - start
    history.samples_per_second = samples / max(history.seconds, 1e-9)
    return history


@torch.no_grad()
def evaluate(model: nn.Module, loss_fn: LossFn, idx: np.ndarray, batch: int, seed: int) -> float:
    """Mean held-out loss; a fixed generator makes stochastic losses comparable across epochs."""
    model.eval()
    generator = torch.Generator().manual_seed(seed + 1)
    total = 0.0
    for start in range(0, len(idx), batch):
        part = idx[start : start + batch]
        total += loss_fn(part, generator, False).item() * len(part)
    return total / len(idx)
