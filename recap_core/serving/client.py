"""Driving a served policy from the robot's side: numpy, msgpack and websockets only (no torch).

``PolicyClient`` speaks the same protocol as ``openpi_client.WebsocketClientPolicy`` (and any openpi
server answers it). ``RemotePolicy`` wraps one as a ``recap_core.policy_api.ChunkPolicy``, so the
simulator's collectors and evaluator drive a policy served elsewhere exactly as they drive a local one:
one request per chunk with every active environment in it, which is also why a remote evaluation on the
same seeds reproduces the in-process one.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlparse, urlunparse

import numpy as np
from websockets.sync.client import ClientConnection, connect

from recap_core.serving import wire
from recap_core.serving.observations import ObservationKeys

REMOTE_SCHEMES = ("ws://", "wss://")


class ServerError(RuntimeError):
    """The server answered a request with an error message (a text frame)."""


def is_remote(policy: str) -> bool:
    """Whether a ``--policy`` value names a served policy rather than a checkpoint directory."""
    return policy.startswith(REMOTE_SCHEMES)


class PolicyClient:
    """One connection to a policy server: its metadata, then one reply per observation dict."""

    def __init__(
        self, url: str, api_key: str | None = None, seed: int | None = None, open_timeout: float = 30.0
    ) -> None:
        self.url = _with_seed(url, seed)
        headers = {"Authorization": f"Api-Key {api_key}"} if api_key else None
        self._connection: ClientConnection = connect(
            self.url, compression=None, max_size=None, additional_headers=headers, open_timeout=open_timeout
        )
        self.metadata: dict[str, Any] = wire.unpack(self._connection.recv())

    def infer(self, observation: Mapping[str, Any]) -> dict[str, Any]:
        self._connection.send(wire.pack(dict(observation)))
        reply = self._connection.recv()
        if isinstance(reply, str):
            raise ServerError(f"policy server {self.url}: {reply}")
        return wire.unpack(reply)

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> PolicyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def healthy(url: str, timeout: float = 2.0) -> bool:
    """Whether the server at ``url`` answers its health check."""
    parsed = urlparse(url)
    scheme = "https" if parsed.scheme == "wss" else "http"
    try:
        with urllib.request.urlopen(f"{scheme}://{parsed.netloc}/healthz", timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


@dataclass(frozen=True)
class ServedCameras:
    """The cameras a served policy reads, as the rollouts ask a policy's ``vision`` for them."""

    cameras: tuple[str, ...]
    image_size: int
    render_quality: tuple[str, ...]


class RemotePolicy:
    """A ``ChunkPolicy`` whose chunks come from a policy server (batched requests, one per chunk)."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        seed: int | None = None,
        defaults: Mapping[str, Any] | None = None,
    ) -> None:
        """``defaults``: metadata for keys the server does not send (an openpi server sends what its
        policy config says, often nothing): ``horizon``, ``cameras``, ``image_size``, ``batched`` (False:
        one observation per request, as openpi servers take them; recap serve takes every environment's
        at once); the observation keys default to openpi's convention (``observation/state``,
        ``observation/<camera>``, ``prompt``)."""
        self.client = PolicyClient(url, api_key=api_key, seed=seed)
        meta = {**(defaults or {}), **self.client.metadata}
        self.metadata = meta
        self.keys = meta.get("observation_keys") or ObservationKeys().to_dict(tuple(meta.get("cameras", ())))
        self.vision = ServedCameras(
            tuple(meta.get("cameras", ())),
            int(meta.get("image_size", 0)),
            tuple(meta.get("render_quality", ())),
        )

    @property
    def horizon(self) -> int:
        if not self.metadata.get("horizon"):
            raise ValueError(
                f"policy server {self.client.url} names no horizon in its metadata: say how many actions "
                "of each chunk to execute (external_policy.horizon)"
            )
        return int(self.metadata["horizon"])

    @property
    def obs_dim(self) -> int | None:
        """The state size the server says it reads (None: it does not say)."""
        return int(self.metadata["obs_dim"]) if self.metadata.get("obs_dim") else None

    @property
    def action_dim(self) -> int | None:
        return int(self.metadata["action_dim"]) if self.metadata.get("action_dim") else None

    @property
    def label(self) -> str:
        """The served checkpoint's ``collected_by`` label (the same as an in-process run of it)."""
        return str(self.metadata.get("policy_label") or self.client.url)

    def act(
        self,
        observations: np.ndarray,
        prompts: Sequence[str],
        images: Mapping[str, np.ndarray] | None = None,
    ) -> np.ndarray:
        states = np.asarray(observations, dtype=np.float32)
        frames = {
            key: np.asarray((images or {})[c], dtype=np.uint8) for c, key in self.keys["cameras"].items()
        }
        if self.metadata.get("batched", True):  # recap serve: one request for every environment
            request: dict[str, Any] = {
                self.keys["state"]: states,
                self.keys["prompt"]: list(prompts),
                **frames,
            }
            return np.asarray(self.client.infer(request)["actions"], dtype=np.float32)
        # an openpi server answers one observation with one (H', A) chunk; the first H actions run
        chunks = []
        for i, prompt in enumerate(prompts):
            request = {self.keys["state"]: states[i], self.keys["prompt"]: prompt}
            request |= {key: frame[i] for key, frame in frames.items()}
            chunk = np.asarray(self.client.infer(request)["actions"], dtype=np.float32)
            chunks.append(chunk[: self.horizon])
        return np.stack(chunks)

    def close(self) -> None:
        self.client.close()


def _with_seed(url: str, seed: int | None) -> str:
    if seed is None:
        return url
    parsed = urlparse(url)
    query = "&".join(part for part in (parsed.query, urlencode({"seed": int(seed)})) if part)
    return urlunparse(parsed._replace(query=query))
