"""Training, saving and loading action-chunk flow policies for RECAP and the SFT / AWR / PPO baselines."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from recap_core.models.flow_policy import (
    INDICATOR_DROPPED,
    INDICATOR_NEGATIVE,
    INDICATOR_POSITIVE,
    FlowChunkPolicy,
    FlowMatchingPolicy,
    FlowPolicyConfig,
    drop_indicators,
)
from recap_core.steps import StepArrays, action_chunks, float_tensor
from recap_core.training.checkpoints import (
    CheckpointRef,
    checkpoint_sha256,
    load_weights,
    read_checkpoint_config,
    save_checkpoint,
)
from recap_core.training.config import (
    POLICY_METHODS,
    PolicyTrainConfig,
    TrainingHistory,
    require_matching_architecture,
)
from recap_core.training.loop import fit, split_episodes
from recap_core.training.objectives import awr_weights, spo_flow_objective
from recap_core.training.pretrained import RecapHubMixin


@dataclass
class TrainedPolicy(RecapHubMixin):
    """A trained flow network, the extraction method that produced it and where it was saved.

    ``TrainedPolicy.from_pretrained("org/repo")`` / ``save_pretrained`` / ``push_to_hub`` follow the
    Hugging Face conventions (see recap_core/training/pretrained.py).
    """

    net: FlowMatchingPolicy
    method: str
    checkpoint: CheckpointRef | None = None
    KIND: ClassVar[str] = "policy"

    @classmethod
    def _load_checkpoint(cls, folder: Path) -> TrainedPolicy:
        return load_trained_policy(folder)

    def _write_checkpoint(self, directory: Path) -> CheckpointRef:
        return save_policy(self, directory)

    def as_chunk_policy(
        self, beta: float = 1.0, flow_steps: int | None = None, seed: int = 0
    ) -> FlowChunkPolicy:
        """The collector-facing ``ChunkPolicy`` (I = positive; CFG when beta != 1 for RECAP policies)."""
        return FlowChunkPolicy(self.net, beta=beta, flow_steps=flow_steps, seed=seed)


def _validate(
    steps: StepArrays, labels: np.ndarray | None, advantages: np.ndarray | None, method: str
) -> None:
    if method not in POLICY_METHODS:
        raise ValueError(f"method must be one of {POLICY_METHODS}, got {method!r}")
    n = len(steps)
    if method == "recap" and (labels is None or np.asarray(labels).shape != (n,)):
        raise ValueError(f"method='recap' needs one indicator per step ({n},), got {np.shape(labels)}")
    if method in ("awr", "ppo"):
        if advantages is None or np.asarray(advantages).shape != (n,):
            raise ValueError(
                f"method={method!r} needs one advantage per step ({n},), got {np.shape(advantages)}"
            )
        steps.require_finite(np.asarray(advantages, dtype=np.float64), "advantage")
    steps.require_finite(steps.observations, "observation")
    steps.require_finite(steps.actions, "action")


def train_policy(
    steps: StepArrays,
    indicators: np.ndarray | None,
    config: PolicyTrainConfig | None = None,
    init_from: str | Path | None = None,
    method: str = "recap",
    advantages: np.ndarray | None = None,
    out_dir: str | Path | None = None,
    reference: str | Path | None = None,
) -> tuple[TrainedPolicy, TrainingHistory]:
    """Train an action-chunk flow policy.

    method "recap": conditioned on ``indicators`` (bool per step; all True = SFT with the indicator
    token), dropped with ``config.indicator_dropout``. "sft": no indicator. "awr": no indicator,
    per-sample losses weighted by ``awr_weights(advantages)``. "ppo": the paper's SPO-style objective on
    ``advantages`` (``spo_flow_objective``) against the frozen ``reference`` checkpoint, the policy that
    collected the data (required for "ppo"; a conditioned reference is scored as it acted, with
    I = positive). ``init_from``: a policy checkpoint to finetune from (architecture, normalisers and
    weights kept, recorded as parent). ``out_dir``: where to save the checkpoint (None: not saved).
    """
    config = config or PolicyTrainConfig()
    torch.manual_seed(config.seed)  # network initialisation is part of the seeded run
    _validate(steps, indicators, advantages, method)
    if method == "ppo" and reference is None:
        raise ValueError("method='ppo' needs reference: the checkpoint of the policy that collected the data")
    obs_dim, action_dim = steps.observations.shape[1], steps.actions.shape[1]
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
        if arch.horizon != config.horizon:
            raise ValueError(
                f"checkpoint {init_from} has horizon {arch.horizon}, config asks {config.horizon}"
            )
        require_matching_architecture(config, arch, init_from)
        net = parent_policy.net
        net.config = dataclasses.replace(arch, conditioned=method == "recap")
    else:
        net = FlowMatchingPolicy(
            FlowPolicyConfig(
                obs_dim=obs_dim,
                action_dim=action_dim,
                horizon=config.horizon,
                backbone=config.backbone,
                hidden=config.hidden,
                depth=config.depth,
                heads=config.heads,
                prompt_dim=config.prompt_dim,
                prompt_buckets=config.prompt_buckets,
                conditioned=method == "recap",
                flow_steps=config.flow_steps,
            )
        )
    train_idx, val_idx = split_episodes(steps, config.val_fraction, config.seed)
    if parent is None:
        net.obs_norm.fit(steps.observations[train_idx])
        net.action_norm.fit(steps.actions[train_idx])

    observations = float_tensor(steps.observations)
    actions = np.ascontiguousarray(steps.actions, dtype=np.float32)
    episode_end = steps.episode_end
    prompts = np.asarray(steps.per_step("prompt"), dtype=object)
    horizon = net.config.horizon
    if method == "recap":
        tokens_all = torch.from_numpy(
            np.where(np.asarray(indicators, dtype=bool), INDICATOR_POSITIVE, INDICATOR_NEGATIVE).astype(
                np.int64
            )
        )
    extra: dict = {}
    if method == "awr":
        weights_all = torch.from_numpy(awr_weights(advantages, config.awr_temperature, config.awr_max_weight))
        extra["awr_weight_max"] = float(weights_all.max())
        extra["awr_effective_fraction"] = float(
            weights_all.sum() ** 2 / (weights_all**2).sum() / len(weights_all)
        )
    if method == "ppo":
        adv = np.asarray(advantages, dtype=np.float64)
        adv_std = torch.from_numpy(((adv - adv.mean()) / (adv.std() or 1.0)).astype(np.float32))
        reference_policy = load_trained_policy(reference)
        reference_net = reference_policy.net.eval().requires_grad_(False)
        reference_token = INDICATOR_POSITIVE if reference_net.config.conditioned else INDICATOR_DROPPED
        extra["ppo_reference"] = reference_policy.checkpoint.path
        extra["ppo_reference_sha256"] = reference_policy.checkpoint.sha256
        extra["ppo_trust_region"] = config.ppo_trust_region

    def loss_fn(idx: np.ndarray, generator: torch.Generator, training: bool) -> torch.Tensor:
        index = torch.from_numpy(idx)
        chunks, mask = action_chunks(actions, episode_end, idx, horizon)
        chunks_t, mask_t = torch.from_numpy(chunks), torch.from_numpy(mask)
        batch = len(idx)
        tau = torch.rand(batch, generator=generator)
        noise = torch.randn(batch, horizon, action_dim, generator=generator)
        if method == "recap":
            tokens = drop_indicators(tokens_all[index], config.indicator_dropout, generator)
        else:
            tokens = torch.full((batch,), INDICATOR_DROPPED, dtype=torch.long)
        context = net.context(observations[index], prompts[idx].tolist())
        per_sample = net.per_sample_loss(context, tokens, chunks_t, mask_t, tau, noise)
        if method in ("recap", "sft"):
            return per_sample.mean()
        if method == "awr":
            return (weights_all[index] * per_sample).mean()
        with torch.no_grad():
            reference_loss = reference_net.per_sample_loss(
                reference_net.context(observations[index], prompts[idx].tolist()),
                torch.full((batch,), reference_token, dtype=torch.long),
                chunks_t,
                mask_t,
                tau,
                noise,
            )
        return spo_flow_objective(
            per_sample, reference_loss, adv_std[index], config.ppo_trust_region, config.ppo_likelihood_scale
        )

    history = fit(net, loss_fn, train_idx, val_idx, config, desc=f"policy ({method})")
    history.n_train_episodes = len(np.unique(steps.episode_index[train_idx]))
    history.n_val_episodes = len(np.unique(steps.episode_index[val_idx]))
    if method == "recap":
        history.extra["positive_fraction"] = float(np.mean(indicators))
    history.extra.update(extra)
    trained = TrainedPolicy(net, method)
    if out_dir is not None:
        trained.checkpoint = save_policy(trained, out_dir, config, history, parent)
    return trained, history


def save_policy(
    policy: TrainedPolicy,
    directory: str | Path,
    config: PolicyTrainConfig | None = None,
    history: TrainingHistory | None = None,
    parent: CheckpointRef | None = None,
) -> CheckpointRef:
    net = policy.net
    return save_checkpoint(
        net,
        directory,
        kind="policy",
        architecture=net.config.to_dict(),
        normalisation={
            "obs_mean": net.obs_norm.mean.tolist(),
            "obs_std": net.obs_norm.std.tolist(),
            "action_mean": net.action_norm.mean.tolist(),
            "action_std": net.action_norm.std.tolist(),
        },
        method=policy.method,
        training={
            "config": config.to_dict() if config else None,
            "history": history.to_dict() if history else None,
        },
        parent=parent,
    )


def load_trained_policy(path: str | Path) -> TrainedPolicy:
    """Rebuild a trained policy (network, method, checkpoint reference) from its directory."""
    config = read_checkpoint_config(path, kind="policy")
    net = FlowMatchingPolicy(FlowPolicyConfig(**config["architecture"]))
    load_weights(net, path)
    net.eval()
    return TrainedPolicy(
        net, config["method"], CheckpointRef(str(Path(path).resolve()), checkpoint_sha256(path))
    )


def load_policy(
    path: str | Path, beta: float = 1.0, flow_steps: int | None = None, seed: int = 0
) -> FlowChunkPolicy:
    """A ``ChunkPolicy`` from a checkpoint: I = positive (beta = 1) or CFG with beta > 1."""
    return load_trained_policy(path).as_chunk_policy(beta=beta, flow_steps=flow_steps, seed=seed)
