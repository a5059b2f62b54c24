"""A checkpoint ready to serve: loaded once, sampled per connection, described in the metadata.

Each connection gets its own sampler (its own noise generator, seeded by the client or 0) over the one
shared network, so one robot's requests never change the noise another robot's chunks are drawn with, and
a client that sends the same requests in the same order as an in-process evaluation gets the same chunks.
RECAP policies are sampled with the positive indicator and the served guidance beta: the robot sends only
its task prompt.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recap_core.checkpoints.external import EXTERNAL_MANIFEST, is_external
from recap_core.checkpoints.format import read_checkpoint_config
from recap_core.checkpoints.labels import policy_label
from recap_core.checkpoints.policy import TrainedPolicy, load_trained_policy
from recap_core.models.flow_policy import FlowChunkPolicy
from recap_core.serving.observations import ExpectedObservation, ObservationKeys, parse_observation

PROTOCOL = "openpi-websocket"


@dataclass
class ServedPolicy:
    """One loaded checkpoint and what the server says about it."""

    policy: TrainedPolicy
    beta: float
    keys: ObservationKeys
    description: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(
        cls,
        checkpoint: str | Path,
        *,
        beta: float = 1.0,
        keys: ObservationKeys | None = None,
        description: dict[str, Any] | None = None,
    ) -> ServedPolicy:
        """Load and verify ``checkpoint``; ``description`` (task, iteration, deployment version, ...) goes
        into the metadata next to what the checkpoint itself says."""
        path = Path(checkpoint).resolve()
        if is_external(path):
            raise ValueError(
                f"{path} was trained by an external trainer ({EXTERNAL_MANIFEST}): recap serve serves this "
                "project's flow policies; serve it with its own server (the external_policy.serve command)"
            )
        policy = load_trained_policy(path)
        if beta != 1.0 and not policy.net.config.conditioned:
            raise ValueError(
                f"{path}: a {policy.method} policy has no indicator, so guidance beta={beta} cannot apply"
            )
        return cls(policy, float(beta), keys or ObservationKeys(), dict(description or {}))

    @property
    def sha256(self) -> str:
        return self.policy.checkpoint.sha256 if self.policy.checkpoint else ""

    @property
    def expected(self) -> ExpectedObservation:
        config = self.policy.net.config
        images = config.images
        return ExpectedObservation(config.obs_dim, tuple(images.cameras), images.image_size, images.channels)

    def metadata(self) -> dict[str, Any]:
        """The dict a client receives on connecting (openpi's ``get_server_metadata()``)."""
        config = self.policy.net.config
        path = Path(self.policy.checkpoint.path) if self.policy.checkpoint else None
        lineage = read_checkpoint_config(path, kind="policy") if path else {}
        images = config.images
        return {
            "server": "recap",
            "protocol": PROTOCOL,
            "checkpoint": str(path) if path else "",
            "checkpoint_sha256": self.sha256,
            "policy_label": policy_label(path) if path else "",
            "method": self.policy.method,
            "beta": self.beta,
            "indicator": "positive" if config.conditioned else "none",
            "horizon": config.horizon,
            "obs_dim": config.obs_dim,
            "action_dim": config.action_dim,
            "cameras": list(images.cameras),
            "image_size": images.image_size if images.cameras else 0,
            "render_quality": list(images.render_quality),
            "observation_keys": self.keys.to_dict(tuple(images.cameras)),
            "created_at": lineage.get("created_at", ""),
            **self.description,
        }

    def session(self, seed: int = 0) -> PolicySession:
        return PolicySession(self, FlowChunkPolicy(self.policy.net, beta=self.beta, seed=seed))


@dataclass
class PolicySession:
    """One connection's sampler."""

    served: ServedPolicy
    sampler: FlowChunkPolicy

    def infer(self, message: Any) -> dict[str, Any]:
        """Action chunks for one request: (H, action_dim) for one observation, (B, H, action_dim) for a
        batch. Raises ``ObservationError`` for a request the checkpoint cannot read."""
        started = time.perf_counter()
        observation = parse_observation(message, self.served.keys, self.served.expected)
        actions = self.sampler.act(observation.states, observation.prompts, images=observation.images or None)
        actions = np.asarray(actions, dtype=np.float32)
        return {
            "actions": actions if observation.batched else actions[0],
            "server_timing": {"infer_ms": (time.perf_counter() - started) * 1e3},
        }
