"""``recap serve``: action chunks over openpi's websocket policy protocol.

The protocol, as openpi's ``WebsocketPolicyServer`` and ``openpi_client.WebsocketClientPolicy`` speak it:
the client opens ws://host:port (optionally with ``Authorization: Api-Key <key>``), the server sends one
msgpack-numpy metadata dict, then every binary message the client sends is one observation dict answered
by one dict with ``actions``. A text message back is an error (the client raises it). ``GET /healthz``
answers 200 without a websocket.

Unlike openpi's server, a request the checkpoint cannot read (a missing key, a wrong shape) is answered
with its error and the connection stays open: a robot whose camera dropped a frame can send the next one.
Each connection runs in its own thread; the network is shared, torch releases the GIL while it computes.
A server following a task's deployment pointer loads a newly published version for the next connection
and leaves the open ones on the version they started with, so an episode never changes policy midway.
"""

from __future__ import annotations

import hmac
import logging
import threading
import traceback
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, urlparse

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from recap_core.serving import wire
from recap_core.serving.deployment import DeploymentPointer
from recap_core.serving.observations import ObservationError, ObservationKeys
from recap_core.serving.served_policy import ServedPolicy

log = logging.getLogger(__name__)
HEALTH_PATH = "/healthz"
API_KEY_VARIABLE = "RECAP_SERVE_API_KEY"


class PolicySource(Protocol):
    """Which policy a new connection gets."""

    def current(self) -> ServedPolicy: ...


@dataclass
class FixedPolicy:
    """Always the one checkpoint."""

    served: ServedPolicy

    def current(self) -> ServedPolicy:
        return self.served


@dataclass
class DeployedPolicy:
    """The task's deployed version, re-read from its pointer for every new connection."""

    pointer: DeploymentPointer
    keys: ObservationKeys = field(default_factory=ObservationKeys)
    beta: float | None = None  # None: the beta the deployment was published with
    _served: ServedPolicy | None = None
    _version: int = -1
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def current(self) -> ServedPolicy:
        deployment = self.pointer.current()
        if deployment is None:
            raise LookupError(f"task {self.pointer.task!r} has no deployed policy yet ({self.pointer.path})")
        with self._lock:
            if self._served is None or deployment.version != self._version:
                self._served = self._load(deployment)
                self._version = deployment.version
                log.info(
                    "serving %s version %d: %s", deployment.task, deployment.version, deployment.checkpoint
                )
            return self._served

    def _load(self, deployment) -> ServedPolicy:
        served = ServedPolicy.load(
            deployment.checkpoint,
            beta=deployment.beta if self.beta is None else self.beta,
            keys=self.keys,
            description={
                "task": deployment.task,
                "iteration": deployment.iteration,
                "deployment_version": deployment.version,
                "published_at": deployment.published_at,
            },
        )
        if served.sha256 != deployment.sha256:
            raise ValueError(
                f"deployed checkpoint {deployment.checkpoint} hashes to {served.sha256[:12]}, not the "
                f"published {deployment.sha256[:12]}: its files changed after it was published"
            )
        return served


@dataclass
class ServerStats:
    connections: int = 0
    requests: int = 0
    errors: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, count in counts.items():
                setattr(self, name, getattr(self, name) + count)


class PolicyServer:
    """A websocket policy server over ``source``; ``start()`` runs it in a background thread."""

    def __init__(
        self, source: PolicySource, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None
    ) -> None:
        self.source = source
        self.api_key = api_key or None
        self.stats = ServerStats()
        self._server: Server = serve(
            self._handle,
            host,
            port,
            process_request=self._process_request,
            compression=None,
            max_size=None,
        )
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.socket.getsockname()[1])

    @property
    def host(self) -> str:
        return str(self._server.socket.getsockname()[0])

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def start(self) -> PolicyServer:
        self._thread = threading.Thread(target=self.serve_forever, name="recap-serve", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> PolicyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ protocol
    def _process_request(self, connection: ServerConnection, request):
        if urlparse(request.path).path == HEALTH_PATH:
            return connection.respond(HTTPStatus.OK, "OK\n")
        if self.api_key is not None:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Api-Key {self.api_key}".encode()):
                return connection.respond(HTTPStatus.UNAUTHORIZED, "missing or wrong API key\n")
        try:
            self.source.current()
        except (LookupError, ValueError, OSError) as error:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, f"{error}\n")
        return None

    def _handle(self, connection: ServerConnection) -> None:
        seed = _seed(connection.request.path if connection.request else "")
        served = self.source.current()
        session = served.session(seed)
        self.stats.add(connections=1)
        try:
            connection.send(wire.pack(served.metadata()))
            for message in connection:
                if isinstance(message, str):
                    connection.send("requests must be binary msgpack-numpy observation dicts, got text")
                    self.stats.add(errors=1)
                    continue
                try:
                    reply = session.infer(wire.unpack(message))
                except ObservationError as error:
                    self.stats.add(errors=1)
                    connection.send(
                        f"bad observation for {Path(served.metadata()['checkpoint']).name}: {error}"
                    )
                    continue
                except Exception:  # the robot gets the traceback; the server keeps serving
                    self.stats.add(errors=1)
                    log.exception("inference failed")
                    connection.send(traceback.format_exc())
                    continue
                connection.send(wire.pack(reply))
                self.stats.add(requests=1)
        except ConnectionClosed:
            pass


def _seed(path: str) -> int:
    """The sampler's seed from ``?seed=N`` in the URL (openpi clients send none: 0)."""
    values = parse_qs(urlparse(path).query).get("seed", ["0"])
    try:
        return int(values[0])
    except ValueError:
        return 0
