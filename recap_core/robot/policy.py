"""The policy as the recorder uses it: action chunks from ``infer``, and who it is from its metadata.

Any object with openpi's ``infer`` fits; ``connect`` opens openpi's own websocket client for a
``ws://host:port`` address (imported then, so the recorder imports without it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from recap_core.robot.interfaces import PROMPT_KEY, Observation, Policy

_KEPT_METADATA = (
    "policy_label",
    "checkpoint",
    "checkpoint_sha256",
    "task",
    "iteration",
    "deployment_version",
)


def connect(url: str, api_key: str | None = None) -> Policy:
    """openpi's ``WebsocketClientPolicy`` connected to a policy server (recap's speaks its protocol)."""
    from openpi_client.websocket_client_policy import WebsocketClientPolicy

    return WebsocketClientPolicy(host=url, api_key=api_key)


def policy_metadata(policy: object) -> dict[str, Any]:
    """The server's metadata: openpi's ``get_server_metadata()``, else a ``metadata`` attribute, else {}."""
    getter = getattr(policy, "get_server_metadata", None)
    metadata = getter() if callable(getter) else getattr(policy, "metadata", None)
    return dict(metadata) if isinstance(metadata, Mapping) else {}


def collected_by(metadata: Mapping[str, Any]) -> str:
    """An episode's ``collected_by``: the server's ``policy_label`` when it sends one (the label an
    in-process run of the same checkpoint writes, so both name it alike), else what the metadata says of
    the checkpoint (iteration, sha256, deployment version)."""
    if metadata.get("policy_label"):
        return str(metadata["policy_label"])
    parts = []
    if metadata.get("iteration") is not None:
        parts.append(f"iteration-{int(metadata['iteration']):03d}")
    if metadata.get("checkpoint_sha256"):
        parts.append(f"@{str(metadata['checkpoint_sha256'])[:12]}")
    if metadata.get("deployment_version") is not None:
        parts.append(f"#deployment-{metadata['deployment_version']}")
    return "policy:" + ("".join(parts) or "unknown")


def provenance(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The metadata entries kept with each episode (its ``recap/policy`` column): what identifies the
    checkpoint and its deployment, as JSON-safe values."""
    kept = {key: metadata[key] for key in _KEPT_METADATA if metadata.get(key) is not None}
    return json.loads(json.dumps(kept, default=str))


class ChunkSource:
    """Asks the policy for a chunk and checks its shape: (H, action_dim), the same action_dim each time."""

    def __init__(self, policy: Policy, prompt: str) -> None:
        if not callable(getattr(policy, "infer", None)):
            raise TypeError(f"{type(policy).__name__} has no infer(observation) -> {{'actions': ...}}")
        self.policy, self.prompt = policy, prompt
        self.metadata = policy_metadata(policy)
        self.action_dim: int | None = None

    def chunk(self, observation: Observation) -> np.ndarray:
        reply = self.policy.infer({**observation, PROMPT_KEY: self.prompt})
        if not isinstance(reply, Mapping) or "actions" not in reply:
            keys = sorted(reply) if isinstance(reply, Mapping) else type(reply).__name__
            raise ValueError(f"the policy's reply has no 'actions' (it has {keys})")
        actions = np.asarray(reply["actions"], dtype=np.float32)
        actions = actions.reshape(1, -1) if actions.ndim == 1 else actions
        if actions.ndim != 2 or len(actions) == 0:
            raise ValueError(f"the policy's actions have shape {actions.shape}: expected (H, action_dim)")
        if self.action_dim is not None and actions.shape[1] != self.action_dim:
            raise ValueError(
                f"the policy's actions changed size from {self.action_dim} to {actions.shape[1]}"
            )
        self.action_dim = actions.shape[1]
        return actions
