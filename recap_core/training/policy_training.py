"""Training, saving and loading action-chunk flow policies for RECAP and the SFT / AWR / PPO baselines."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from recap_core.checkpoints.format import (
    CheckpointRef,
)
from recap_core.checkpoints.policy import TrainedPolicy, load_trained_policy, save_policy
from recap_core.extraction import METHOD_FACTS, Method
from recap_core.extraction import method as parse_method
from recap_core.models.flow_policy import (
    INDICATOR_DROPPED,
    INDICATOR_NEGATIVE,
    INDICATOR_POSITIVE,
    FlowMatchingPolicy,
    drop_indicators,
)
from recap_core.models.frames import batch_images, step_images
from recap_core.steps import StepArrays, action_chunks, float_tensor
from recap_core.training.config import PolicyTrainConfig, TrainingHistory, require_matching_architecture
from recap_core.training.device import CPU, Placement
from recap_core.training.distributed import SINGLE_PROCESS, Distributed
from recap_core.training.fit import fit
from recap_core.training.objectives import awr_unnormalised_weights, awr_weights, spo_flow_objective
from recap_core.training.sources import Shard, TrainingData, in_memory_data
from recap_core.training.statistics import column_max, column_mean, column_moments, fit_normalisers

# The per-step columns a shard carries for the methods that need them.
INDICATOR_COLUMN = "indicator"
ADVANTAGE_COLUMN = "advantage"


def _validate(
    steps: StepArrays, labels: np.ndarray | None, advantages: np.ndarray | None, method: Method
) -> None:
    n = len(steps)
    needs = METHOD_FACTS[method]
    if needs.conditioned and (labels is None or np.asarray(labels).shape != (n,)):
        raise ValueError(
            f"method={method.value!r} needs one indicator per step ({n},), got {np.shape(labels)}"
        )
    if needs.uses_advantages:
        if advantages is None or np.asarray(advantages).shape != (n,):
            raise ValueError(
                f"method={method.value!r} needs one advantage per step ({n},), got {np.shape(advantages)}"
            )
        steps.require_finite(np.asarray(advantages, dtype=np.float64), "advantage")
    steps.require_finite(steps.observations, "observation")
    steps.require_finite(steps.actions, "action")


def _columns(indicators: np.ndarray | None, advantages: np.ndarray | None) -> dict[str, np.ndarray]:
    columns = {}
    if indicators is not None:
        columns[INDICATOR_COLUMN] = np.asarray(indicators, dtype=bool)
    if advantages is not None:
        columns[ADVANTAGE_COLUMN] = np.asarray(advantages, dtype=np.float64)
    return columns


def train_policy(
    steps: StepArrays | TrainingData,
    indicators: np.ndarray | None = None,
    config: PolicyTrainConfig | None = None,
    init_from: str | Path | None = None,
    method: str = Method.RECAP,
    advantages: np.ndarray | None = None,
    out_dir: str | Path | None = None,
    reference: str | Path | None = None,
    distributed: Distributed = SINGLE_PROCESS,
    placement: Placement = CPU,
) -> tuple[TrainedPolicy, TrainingHistory]:
    """Train an action-chunk flow policy.

    method "recap": conditioned on ``indicators`` (bool per step; all True = SFT with the indicator
    token), dropped with ``config.indicator_dropout``. "sft": no indicator. "awr": no indicator,
    per-sample losses weighted by ``awr_weights(advantages)``. "ppo": the paper's SPO-style objective on
    ``advantages`` (``spo_flow_objective``) against the frozen ``reference`` checkpoint, the policy that
    collected the data (required for "ppo"; a conditioned reference is scored as it acted, with
    I = positive). ``steps`` may be a ``TrainingData`` (streamed, or this rank's part under torchrun)
    whose shards carry "indicator" / "advantage" columns instead. ``init_from``: a policy checkpoint to
    finetune from (architecture, normalisers and weights kept, recorded as parent). ``out_dir``: where
    to save the checkpoint (None: not saved; under torchrun only rank 0 saves). ``placement``: the device
    and precision it trains at (the CPU in float32 unless a benchmark asks otherwise); the random draws
    stay on the CPU's generators, so a seed means the same flow times and noise on every device.
    """
    config = config or PolicyTrainConfig()
    method = parse_method(method)
    conditioned = METHOD_FACTS[method].conditioned
    torch.manual_seed(config.seed)  # network initialisation is part of the seeded run
    if isinstance(steps, TrainingData):
        data = steps
    else:
        _validate(steps, indicators, advantages, method)
        data = in_memory_data(steps, _columns(indicators, advantages), config.val_fraction, config.seed)
    if METHOD_FACTS[method].needs_reference and reference is None:
        raise ValueError(
            f"method={method.value!r} needs reference: the checkpoint of the policy that collected the data"
        )
    obs_dim, action_dim = data.obs_dim, data.action_dim
    parent: CheckpointRef | None = None
    if init_from is not None:
        parent_policy = load_trained_policy(init_from)
        parent = parent_policy.checkpoint
        arch = parent_policy.net.config
        if (arch.obs_dim, arch.action_dim) != (obs_dim, action_dim):
            raise ValueError(
                f"checkpoint {init_from} expects obs/action dims {(arch.obs_dim, arch.action_dim)}, "
                f"the steps have {(obs_dim, action_dim)}"
            )
        require_matching_architecture(config.architecture, arch, init_from)
        net = parent_policy.net
        net.config = dataclasses.replace(arch, conditioned=conditioned)
    else:
        net = FlowMatchingPolicy(config.architecture.sized(obs_dim, action_dim, conditioned))
    if parent is None:
        fit_normalisers(
            data,
            [(net.obs_norm, lambda s: s.observations), (net.action_norm, lambda s: s.actions)],
            distributed,
        )
    objective = _OBJECTIVES[method](data, config, reference, distributed, placement)
    horizon = net.config.horizon
    put = placement.put

    def make_loss(shard: Shard):
        part = shard.steps
        columns = {name: put(values) for name, values in objective.columns(shard).items()}
        observations = put(float_tensor(part.observations))
        actions = np.ascontiguousarray(part.actions, dtype=np.float32)
        episode_end = part.episode_end
        prompts = np.asarray(part.per_step("prompt"), dtype=object)
        images = {camera: put(frames) for camera, frames in step_images(part, net.config.images).items()}

        def loss_fn(idx: np.ndarray, generator: torch.Generator, training: bool) -> torch.Tensor:
            index = put(torch.from_numpy(idx))
            chunks, mask = action_chunks(actions, episode_end, idx, horizon)
            batch = _Batch(
                index=index,
                observations=observations[index],
                prompts=prompts[idx].tolist(),
                images=batch_images(images, index),
                chunks=put(torch.from_numpy(chunks)),
                mask=put(torch.from_numpy(mask)),
                tau=put(torch.rand(len(idx), generator=generator)),
                noise=put(torch.randn(len(idx), horizon, action_dim, generator=generator)),
                columns=columns,
            )
            tokens = objective.tokens(batch, generator)
            context = net.context(batch.observations, batch.prompts, batch.images)
            per_sample = net.per_sample_loss(
                context, tokens, batch.chunks, batch.mask, batch.tau, batch.noise
            )
            return objective.loss(per_sample, batch)

        return loss_fn

    # every method uses every parameter (unconditioned methods embed the "dropped" indicator token)
    history = fit(
        net, make_loss, data, config, f"policy ({method})", distributed=distributed, placement=placement
    )
    history.extra.update(objective.extra)
    trained = TrainedPolicy(net, method.value)
    if out_dir is not None and distributed.is_main:
        trained.checkpoint = save_policy(trained, out_dir, config, history, parent)
    return trained, history


@dataclass
class _Batch:
    """One batch of a shard: the sampled flow times and noise, and what an objective may read."""

    index: torch.Tensor
    observations: torch.Tensor
    prompts: list[str]
    images: dict[str, torch.Tensor] | None
    chunks: torch.Tensor
    mask: torch.Tensor
    tau: torch.Tensor
    noise: torch.Tensor
    columns: dict[str, torch.Tensor]


def _dropped_tokens(batch: _Batch, _generator: torch.Generator) -> torch.Tensor:
    return torch.full((len(batch.index),), INDICATOR_DROPPED, dtype=torch.long)


def _mean_loss(per_sample: torch.Tensor, _batch: _Batch) -> torch.Tensor:
    return per_sample.mean()


@dataclass
class _Objective:
    """What a method trains on beyond the steps and how it turns per-sample flow-matching losses into
    its loss: per-shard tensors from the joined columns (computed with statistics over all of the data),
    the indicator tokens of a batch, the loss, and facts for the lineage."""

    columns: Callable[[Shard], dict[str, torch.Tensor]]
    extra: dict
    tokens: Callable[[_Batch, torch.Generator], torch.Tensor] = _dropped_tokens
    loss: Callable[[torch.Tensor, _Batch], torch.Tensor] = _mean_loss


def _require_column(shard: Shard, name: str, method: Method) -> np.ndarray:
    values = shard.columns.get(name)
    if values is None or np.shape(values) != (len(shard.steps),):
        raise ValueError(
            f"method={method.value!r} needs one {name} per step ({len(shard.steps)},), got {np.shape(values)}"
        )
    if name == ADVANTAGE_COLUMN:
        shard.steps.require_finite(np.asarray(values, dtype=np.float64), name)
    return np.asarray(values)


def _everything(data: TrainingData) -> list:
    return [*data.train, *data.val]


def _exact(data: TrainingData, distributed: Distributed) -> bool:
    """One process with the steps in memory: statistics straight from the training shard's columns."""
    return data.memory is not None and not distributed.enabled


def _advantage(method: Method) -> Callable[[Shard], np.ndarray]:
    return lambda shard: _require_column(shard, ADVANTAGE_COLUMN, method)


def _recap_objective(
    data: TrainingData,
    config: PolicyTrainConfig,
    _reference: str | Path | None,
    distributed: Distributed,
    _placement: Placement,
) -> _Objective:
    """Flow matching conditioned on I_t, dropped with ``indicator_dropout`` (classifier-free guidance)."""
    method = Method.RECAP
    positive = (
        float(np.mean(data.train[0].shard.columns[INDICATOR_COLUMN]))  # type: ignore[attr-defined]
        if _exact(data, distributed)
        else column_mean(
            _everything(data), lambda s: _require_column(s, INDICATOR_COLUMN, method), distributed
        )
    )

    def tokens(shard: Shard) -> dict[str, torch.Tensor]:
        labels = _require_column(shard, INDICATOR_COLUMN, method).astype(bool)
        return {
            "tokens": torch.from_numpy(
                np.where(labels, INDICATOR_POSITIVE, INDICATOR_NEGATIVE).astype(np.int64)
            )
        }

    def dropped(batch: _Batch, generator: torch.Generator) -> torch.Tensor:
        return drop_indicators(batch.columns["tokens"][batch.index], config.indicator_dropout, generator)

    return _Objective(tokens, {"positive_fraction": positive}, tokens=dropped)


def _sft_objective(
    _data: TrainingData,
    _config: PolicyTrainConfig,
    _reference: str | Path | None,
    _distributed: Distributed,
    _placement: Placement,
) -> _Objective:
    """Plain flow matching, the indicator always dropped."""
    return _Objective(lambda shard: {}, {})


def _awr_weighted(per_sample: torch.Tensor, batch: _Batch) -> torch.Tensor:
    return (batch.columns["weights"][batch.index] * per_sample).mean()


def _awr_objective(
    data: TrainingData,
    config: PolicyTrainConfig,
    _reference: str | Path | None,
    distributed: Distributed,
    _placement: Placement,
) -> _Objective:
    """Per-sample losses weighted by exp(A / T), clipped and normalised to mean 1."""
    advantage = _advantage(Method.AWR)
    if _exact(data, distributed):
        shard = data.train[0].shard  # type: ignore[attr-defined]
        weights_all = torch.from_numpy(
            awr_weights(advantage(shard), config.awr_temperature, config.awr_max_weight)
        )
        extra = {
            "advantage_mean": float(np.mean(advantage(shard), dtype=np.float64)),
            "awr_weight_max": float(weights_all.max()),
            "awr_effective_fraction": float(
                weights_all.sum() ** 2 / (weights_all**2).sum() / len(weights_all)
            ),
        }
        return _Objective(lambda shard: {"weights": weights_all}, extra, loss=_awr_weighted)
    everything = _everything(data)
    _, mean, std = column_moments(everything, advantage, distributed)
    temperature = config.awr_temperature if config.awr_temperature is not None else (std or 1.0)
    weigh = lambda shard: awr_unnormalised_weights(  # noqa: E731
        advantage(shard), mean, temperature, config.awr_max_weight
    )
    _, scale, spread = column_moments(everything, weigh, distributed)
    extra = {
        "advantage_mean": mean,
        "awr_weight_max": column_max(everything, weigh, distributed) / scale,
        "awr_effective_fraction": float(scale**2 / (spread**2 + scale**2)),
    }
    return _Objective(
        lambda shard: {"weights": torch.from_numpy((weigh(shard) / scale).astype(np.float32))},
        extra,
        loss=_awr_weighted,
    )


def _ppo_objective(
    data: TrainingData,
    config: PolicyTrainConfig,
    reference: str | Path | None,
    distributed: Distributed,
    placement: Placement,
) -> _Objective:
    """The SPO objective on standardised advantages against the frozen policy that collected the data."""
    advantage = _advantage(Method.PPO)
    if _exact(data, distributed):
        adv = np.asarray(advantage(data.train[0].shard), dtype=np.float64)  # type: ignore[attr-defined]
        mean, std = float(adv.mean()), float(adv.std())
    else:
        _, mean, std = column_moments(_everything(data), advantage, distributed)
    reference_policy = load_trained_policy(reference)
    reference_net = reference_policy.net.eval().requires_grad_(False).to(placement.device)
    reference_token = INDICATOR_POSITIVE if reference_net.config.conditioned else INDICATOR_DROPPED
    extra = {
        "advantage_mean": mean,
        "ppo_reference": reference_policy.checkpoint.path,
        "ppo_reference_sha256": reference_policy.checkpoint.sha256,
        "ppo_trust_region": config.ppo_trust_region,
    }

    def standardised(shard: Shard) -> dict[str, torch.Tensor]:
        values = (np.asarray(advantage(shard), dtype=np.float64) - mean) / (std or 1.0)
        return {"standardised": torch.from_numpy(values.astype(np.float32))}

    def loss(per_sample: torch.Tensor, batch: _Batch) -> torch.Tensor:
        with torch.no_grad():
            reference_loss = reference_net.per_sample_loss(
                reference_net.context(batch.observations, batch.prompts, batch.images),
                torch.full((len(batch.index),), reference_token, dtype=torch.long, device=batch.index.device),
                batch.chunks,
                batch.mask,
                batch.tau,
                batch.noise,
            )
        return spo_flow_objective(
            per_sample,
            reference_loss,
            batch.columns["standardised"][batch.index],
            config.ppo_trust_region,
            config.ppo_likelihood_scale,
        )

    return _Objective(standardised, extra, loss=loss)


_OBJECTIVES: Mapping[Method, Callable[..., _Objective]] = {
    Method.RECAP: _recap_objective,
    Method.SFT: _sft_objective,
    Method.AWR: _awr_objective,
    Method.PPO: _ppo_objective,
}
assert set(_OBJECTIVES) == set(Method), "every method of recap_core.extraction needs its objective"
