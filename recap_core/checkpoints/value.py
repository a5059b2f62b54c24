"""The value function as a checkpoint: what it is (network + reward units), saving, loading and labelling.

Loading V needs no trainer: collection, labelling and the CLI read it from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from recap_core.checkpoints.format import CheckpointRef, Recordable, read_checkpoint_config
from recap_core.checkpoints.hub_mixin import RecapHubMixin
from recap_core.checkpoints.serialise import build_network, load_verified_weights, save_checkpoint
from recap_core.checkpoints.verification import verify_checkpoint
from recap_core.models.frames import batch_images, step_images
from recap_core.models.value import DistributionalValueFunction, ValueNetConfig
from recap_core.rules.rewards import RewardConfig, episode_progress
from recap_core.steps import StepArrays


@dataclass
class ValueFunction(RecapHubMixin):
    """A value network together with the reward constants that define its units.

    ``ValueFunction.from_pretrained("org/repo")`` / ``save_pretrained`` / ``push_to_hub`` follow the
    Hugging Face conventions (see recap_core/checkpoints/hub_mixin.py).
    """

    net: DistributionalValueFunction
    reward_config: RewardConfig
    checkpoint: CheckpointRef | None = None
    KIND: ClassVar[str] = "value"

    @classmethod
    def _load_checkpoint(cls, folder: Path) -> ValueFunction:
        return load_value_function(folder)

    def _write_checkpoint(self, directory: Path) -> CheckpointRef:
        return save_value_function(self, directory)

    def predict(self, steps: StepArrays, batch_size: int = 8192) -> np.ndarray:
        return predict_values(self, steps, batch_size)


def _reward_to_dict(reward: RewardConfig) -> dict:
    return {"c_fail": reward.c_fail, "task_max_length": dict(reward.task_max_length)}


def _reward_from_dict(data: dict) -> RewardConfig:
    """The stored reward (checkpoints written before the value support moved to the architecture also
    carry its ``value_min`` / ``value_max`` here: the same numbers as their architecture's)."""
    return RewardConfig(c_fail=data["c_fail"], task_max_length=dict(data["task_max_length"]))


def check_observations(steps: StepArrays, obs_dim: int) -> None:
    if steps.observations.ndim != 2 or steps.observations.shape[1] != obs_dim:
        raise ValueError(
            f"observations have shape {steps.observations.shape}; the model expects (N, {obs_dim})"
        )
    steps.require_finite(steps.observations, "observation")


@torch.inference_mode()
def predict_values(
    vf: ValueFunction, steps: StepArrays, batch_size: int = 8192, index: np.ndarray | None = None
) -> np.ndarray:
    """V(o_t) for every step (or the steps at ``index``), float32, in normalised units."""
    check_observations(steps, vf.net.config.obs_dim)
    vf.net.eval()
    device = vf.net.support.device  # where the network is (the CPU unless a benchmark moved it)
    idx = np.arange(len(steps)) if index is None else np.asarray(index)
    prompts = steps.episodes["prompt"].to_numpy()
    progress = torch.from_numpy(episode_progress(steps, vf.reward_config))
    images = step_images(steps, vf.net.config.images)
    out = np.empty(len(idx), dtype=np.float32)
    for start in range(0, len(idx), batch_size):
        part = idx[start : start + batch_size]
        obs = torch.from_numpy(np.ascontiguousarray(steps.observations[part], dtype=np.float32))
        prompt_list = prompts[steps.episode_index[part]].tolist()
        rows = torch.from_numpy(part)
        frames = batch_images(images, rows)
        values = vf.net(
            obs.to(device),
            prompt_list,
            progress[rows].to(device),
            {c: f.to(device) for c, f in frames.items()} if frames else None,
        )
        out[start : start + len(part)] = values.float().cpu().numpy()
    return out


def save_value_function(
    vf: ValueFunction,
    directory: str | Path,
    config: Recordable | None = None,
    history: Recordable | None = None,
    parent: CheckpointRef | None = None,
) -> CheckpointRef:
    norm = vf.net.obs_norm
    return save_checkpoint(
        vf.net,
        directory,
        kind="value",
        architecture=vf.net.config.to_dict(),
        normalisation={"obs_mean": norm.mean.tolist(), "obs_std": norm.std.tolist()},
        method="distributional-mc",
        training={
            "config": config.to_dict() if config else None,
            "history": history.to_dict() if history else None,
        },
        parent=parent,
        extra={"reward": _reward_to_dict(vf.reward_config)},
    )


def load_value_function(path: str | Path, allow_legacy: bool | None = None) -> ValueFunction:
    """Rebuild a value function from its checkpoint directory (weights, normalisers, reward units), after
    verifying it (recap_core/checkpoints/verification.py)."""
    config = read_checkpoint_config(path, kind="value")
    verified = verify_checkpoint(path, allow_legacy)
    architecture = config.get("architecture")
    net = build_network(
        "value",
        path,
        lambda: DistributionalValueFunction(ValueNetConfig.from_dict(architecture), load_pretrained=False),
    )
    load_verified_weights(net, path)
    net.eval()
    reference = CheckpointRef(str(Path(path).resolve()), verified.sha256)
    return ValueFunction(net, _reward_from_dict(config["reward"]), reference)
