"""``fit``: the optimisation every trainer shares. Seeded minibatch steps with a held-out split and early
stopping, on one process or data-parallel over torchrun ranks, from in-memory or streamed shards."""

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
from recap_core.training.config import OptimisationConfig, TrainingHistory
from recap_core.training.device import CPU, Placement
from recap_core.training.distributed import SINGLE_PROCESS, Distributed, LossModule
from recap_core.training.sources import Shard, StepSource, TrainingData

# loss_fn(flat step indices into the shard's steps, generator, training) -> scalar loss
LossFn = Callable[[np.ndarray, torch.Generator, bool], torch.Tensor]
# make_loss(shard) -> the loss over that shard's steps and columns
MakeLoss = Callable[[Shard], LossFn]


def fit(
    model: nn.Module,
    make_loss: MakeLoss,
    data: TrainingData,
    config: OptimisationConfig,
    desc: str,
    distributed: Distributed = SINGLE_PROCESS,
    on_epoch_start: Callable[[int], None] | None = None,
    unused_parameters: bool = False,
    placement: Placement = CPU,
) -> TrainingHistory:
    """Train ``model`` in place; the final weights follow ``config.weights`` (best held-out or last).

    ``placement``: the device the model trains on and whether its losses run under bfloat16 autocast;
    the loss closures put their batches there. The model is back on the CPU, in float32, when ``fit``
    returns, so saving, hashing and acting on it are the same wherever it trained.

    ``config.batch_size`` is the global batch: each of the ``data.world_size`` ranks takes an equal
    part of every step, and the gradient is their mean, whether the ranks are torchrun processes (DDP
    averages) or all computed here (accumulated). Every rank takes the same number of steps (the
    smallest rank's), and held-out losses are summed over ranks, so early stopping agrees everywhere.
    """
    counts = data.counts()
    if counts["n_train_steps"] == 0:
        raise ValueError("no training steps: the training split is empty")
    world = data.world_size
    if config.batch_size % world:
        raise ValueError(f"batch_size {config.batch_size} does not split evenly over {world} ranks")
    torch.manual_seed(config.seed)
    model.to(placement.device)
    rngs = [np.random.default_rng(config.seed + source.rank) for source in data.train]
    generators = [torch.Generator().manual_seed(config.seed + source.rank) for source in data.train]
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    batch = min(config.batch_size, counts["n_train_steps"]) // world
    if batch < 1:
        raise ValueError(
            f"{counts['n_train_steps']} training steps cannot fill a batch on each of {world} ranks"
        )
    history = TrainingHistory(weights=config.weights, **counts)
    wrapped = (
        distributed.wrap(LossModule(model), unused_parameters, placement.device)
        if distributed.enabled
        else None
    )
    losses_of = _LossCache(make_loss)
    keep_best = config.weights == "best_heldout"
    best = math.inf
    best_state: dict | None = None
    bad_epochs = 0
    samples = 0
    start = time.perf_counter()
    bar = tqdm(
        total=config.epochs, desc=desc, disable=not (config.progress and distributed.is_main), leave=False
    )
    for epoch in range(config.epochs):
        if on_epoch_start is not None:
            on_epoch_start(epoch)
        model.train()
        per_rank = [s.batch_count(epoch, batch, config.steps_per_epoch) for s in data.train]
        steps_this_epoch = distributed.min(min(per_rank))
        streams = [
            source.batches(epoch, rng, batch, config.steps_per_epoch)
            for source, rng in zip(data.train, rngs, strict=True)
        ]
        losses = []
        for step in range(steps_this_epoch):
            total = None
            for stream, generator in zip(streams, generators, strict=True):
                shard, idx = next(stream)
                loss_fn = losses_of(shard)
                with placement.autocast():
                    loss = (
                        wrapped(loss_fn, idx, generator)
                        if wrapped is not None
                        else loss_fn(idx, generator, True)
                    )
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"{desc}: loss became {loss.item()} at epoch {epoch}, step {step}"
                    )
                total = loss / len(streams) if total is None else total + loss / len(streams)
            optimiser.zero_grad(set_to_none=True)
            total.backward()
            if config.grad_clip > 0:
                nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimiser.step()
            losses.append(total.item())
            history.gradient_steps += 1
            samples += batch * world
        history.train_loss.append(float(distributed.sum([np.mean(losses)])[0] / distributed.processes))
        bar.update(1)
        if counts["n_val_steps"] == 0:
            continue
        with placement.autocast():
            val = evaluate_sources(model, losses_of, data.val, batch, config.seed, distributed)
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
    model.to("cpu")
    model.eval()
    history.seconds = time.perf_counter() - start
    history.samples_per_second = samples / max(history.seconds, 1e-9)
    return history


class _LossCache:
    """The loss closure of the current shard of each rank: built once per shard (tensors over its steps)."""

    def __init__(self, make_loss: MakeLoss) -> None:
        self.make_loss = make_loss
        self.built: dict[int, tuple[StepArrays, LossFn]] = {}

    def __call__(self, shard: Shard) -> LossFn:
        key = id(shard.steps)
        cached = self.built.get(key)
        if cached is None or cached[0] is not shard.steps:
            if len(self.built) > 4:  # streamed shards are not revisited: keep memory to the current few
                self.built.clear()
            cached = (shard.steps, self.make_loss(shard))
            self.built[key] = cached
        return cached[1]


def evaluate_sources(
    model: nn.Module,
    losses_of: Callable[[Shard], LossFn],
    sources: list[StepSource],
    batch: int,
    seed: int,
    distributed: Distributed = SINGLE_PROCESS,
) -> float:
    """Mean held-out loss over every rank's held-out samples."""
    totals = np.zeros(2)
    for source in sources:
        for shard in source.shards(0):
            if len(shard.index):
                totals += (
                    _held_out_total(model, losses_of(shard), shard.index, batch, seed),
                    len(shard.index),
                )
    total, count = distributed.sum(totals)
    return float(total / count) if count else math.nan


@torch.no_grad()
def _held_out_total(model: nn.Module, loss_fn: LossFn, idx: np.ndarray, batch: int, seed: int) -> float:
    model.eval()
    generator = torch.Generator().manual_seed(seed + 1)
    total = 0.0
    for start in range(0, len(idx), batch):
        part = idx[start : start + batch]
        total += loss_fn(part, generator, False).item() * len(part)
    return total
