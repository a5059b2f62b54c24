"""The policy as a checkpoint: what it is (flow network + extraction method), saving and loading.

Loading pi needs no trainer: collection, evaluation, serving and the CLI read it from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from recap_core.checkpoints.format import CheckpointRef, Recordable, read_checkpoint_config
from recap_core.checkpoints.hub_mixin import RecapHubMixin
from recap_core.checkpoints.serialise import build_network, load_verified_weights, save_checkpoint
from recap_core.checkpoints.verification import verify_checkpoint
from recap_core.models.flow_policy import FlowChunkPolicy, FlowMatchingPolicy, FlowPolicyConfig


@dataclass
class TrainedPolicy(RecapHubMixin):
    """A trained flow network, the extraction method that produced it and where it was saved.

    ``TrainedPolicy.from_pretrained("org/repo")`` / ``save_pretrained`` / ``push_to_hub`` follow the
    Hugging Face conventions (see recap_core/checkpoints/hub_mixin.py).
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


def save_policy(
    policy: TrainedPolicy,
    directory: str | Path,
    config: Recordable | None = None,
    history: Recordable | None = None,
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


def load_trained_policy(path: str | Path, allow_legacy: bool | None = None) -> TrainedPolicy:
    """Rebuild a trained policy (network, method, checkpoint reference) from its directory, after
    verifying it (recap_core/checkpoints/verification.py)."""
    config = read_checkpoint_config(path, kind="policy")
    verified = verify_checkpoint(path, allow_legacy)
    architecture = config.get("architecture")
    net = build_network(
        "policy",
        path,
        lambda: FlowMatchingPolicy(FlowPolicyConfig.from_dict(architecture), load_pretrained=False),
    )
    load_verified_weights(net, path)
    net.eval()
    return TrainedPolicy(net, config["method"], CheckpointRef(str(Path(path).resolve()), verified.sha256))


def load_policy(
    path: str | Path,
    beta: float = 1.0,
    flow_steps: int | None = None,
    seed: int = 0,
    allow_legacy: bool | None = None,
) -> FlowChunkPolicy:
    """A ``ChunkPolicy`` from a checkpoint: I = positive (beta = 1) or CFG with beta > 1."""
    policy = load_trained_policy(path, allow_legacy)
    return policy.as_chunk_policy(beta=beta, flow_steps=flow_steps, seed=seed)
