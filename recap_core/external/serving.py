"""An external policy served for evaluation and collection: its own server, started from its own
environment, driven over openpi's websocket protocol like any robot drives a policy.

The serve command comes from the settings (``external_policy.serve``), not from the checkpoint's files,
so a checkpoint directory cannot choose what runs on this machine; the manifest records which command
served it. The server gets a free port on 127.0.0.1, must answer ``/healthz`` within
``startup_timeout_s`` and is stopped when the block ends, whatever happened inside it.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from recap_core.external.config import ExternalPolicyConfig, render
from recap_core.external.process import command_environment, failure, free_port, last_lines
from recap_core.serving.client import RemotePolicy, healthy

HOST = "127.0.0.1"


@contextmanager
def served_external_policy(
    config: ExternalPolicyConfig,
    checkpoint: Path,
    task: str,
    seed: int,
    cameras: tuple[str, ...] = (),
    image_size: int = 0,
) -> Iterator[RemotePolicy]:
    """A ``RemotePolicy`` over the external server of ``checkpoint``, for the block's duration."""
    port = free_port(HOST)
    command = render(config.serve, {"checkpoint": checkpoint, "host": HOST, "port": port, "task": task})
    with tempfile.TemporaryDirectory(prefix="recap-external-serve-") as folder:
        log_file = Path(folder) / "server.log"
        with log_file.open("w") as log:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=command_environment(config.env),
                cwd=config.cwd or None,
            )
        try:
            url = f"ws://{HOST}:{port}"
            _wait_until_healthy(process, url, config, command, log_file)
            defaults = {
                "horizon": config.horizon,
                "cameras": list(cameras),
                "image_size": image_size,
                "batched": False,
                "policy_label": f"{config.name}:{checkpoint.parent.name}/{checkpoint.name}",
            }
            policy = RemotePolicy(url, seed=seed, defaults=defaults)
            try:
                yield policy
            finally:
                policy.close()
            if process.poll() is not None:
                tail = last_lines(log_file)
                raise failure("the external policy server", command, "exited while serving", tail)
        finally:
            _stop(process)


def _wait_until_healthy(
    process: subprocess.Popen, url: str, config: ExternalPolicyConfig, command: list[str], log_file: Path
) -> None:
    deadline = time.monotonic() + config.startup_timeout_s
    while not healthy(url, timeout=1.0):
        code = process.poll()
        if code is not None:
            raise failure("the external policy server", command, f"exited with {code}", last_lines(log_file))
        if time.monotonic() > deadline:
            raise failure(
                "the external policy server",
                command,
                f"did not answer {url}/healthz within {config.startup_timeout_s:g} s",
                last_lines(log_file),
            )
        time.sleep(0.1)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
