"""`recap serve` and `recap deploy`: pi^k to robots over openpi's websocket protocol, behind a pointer
the pipeline's gate publishes to and one command rolls back."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
from typing import Annotated

import typer

from pipelines.cli.options import StudyOption, TaskOption, command_group

deploy_app = command_group(help="The serving pointer: what `recap serve --task` serves, and rollback.")

CheckpointsRootOption = Annotated[
    str | None,
    typer.Option("--checkpoints", help="Checkpoint root (default: $RECAP_HOME/checkpoints)."),
]


def _pointer(task: str, study: str, checkpoints: str | None):
    from recap_core.locations import checkpoint_dir
    from recap_core.serving.deployment import DeploymentPointer

    return DeploymentPointer(checkpoint_dir(study, checkpoints), task)


def serve(
    checkpoint: Annotated[
        str | None, typer.Option("--checkpoint", help="Serve this policy checkpoint directory.")
    ] = None,
    task: Annotated[
        str | None,
        typer.Option("--task", help="Serve the task's deployed pi^k, following its pointer as it moves."),
    ] = None,
    study: StudyOption = "default",
    checkpoints: CheckpointsRootOption = None,
    host: Annotated[
        str, typer.Option(help="Address to bind (loopback unless told otherwise).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free one, printed).")] = 8000,
    beta: Annotated[
        float | None,
        typer.Option(help="Guidance weight (default: the deployment's, or 1 for --checkpoint)."),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key", help="Require 'Authorization: Api-Key <key>' (default: $RECAP_SERVE_API_KEY)."
        ),
    ] = None,
    state_key: Annotated[str, typer.Option(help="Request key of the state vector.")] = "observation/state",
    prompt_key: Annotated[str, typer.Option(help="Request key of the task prompt.")] = "prompt",
    camera_key: Annotated[
        list[str] | None,
        typer.Option(help="camera=key for a camera not sent as observation/<camera> (repeatable)."),
    ] = None,
    threads: Annotated[int, typer.Option(help="torch threads for sampling.")] = 1,
) -> None:
    """Serve action chunks to robots (openpi_client.WebsocketClientPolicy or `--policy ws://...`)."""
    if (checkpoint is None) == (task is None):
        raise ValueError("give --checkpoint PATH or --task NAME (its deployed version), not both or neither")
    import torch

    from recap_core.serving.observations import ObservationKeys
    from recap_core.serving.served_policy import ServedPolicy
    from recap_core.serving.server import API_KEY_VARIABLE, DeployedPolicy, FixedPolicy, PolicyServer

    torch.set_num_threads(threads)
    keys = ObservationKeys(state=state_key, prompt=prompt_key, cameras=_camera_keys(camera_key or []))
    key = api_key or os.environ.get(API_KEY_VARIABLE) or None
    if key is None and not _loopback(host):
        typer.echo(
            f"warning: serving on {host} without an API key: anyone who reaches it gets actions", err=True
        )
    if checkpoint is not None:
        source = FixedPolicy(ServedPolicy.load(checkpoint, beta=1.0 if beta is None else beta, keys=keys))
    else:
        source = DeployedPolicy(_pointer(task, study, checkpoints), keys=keys, beta=beta)
        source.current()  # fail now, not at the first robot, when nothing is deployed
    server = PolicyServer(source, host=host, port=port, api_key=key)
    metadata = source.current().metadata()
    typer.echo(json.dumps({"serving": server.url, "checkpoint": metadata["checkpoint"],
                           "sha256": metadata["checkpoint_sha256"][:12], "horizon": metadata["horizon"],
                           "beta": metadata["beta"], "api_key": key is not None}), err=False)  # fmt: skip
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


@deploy_app.command("status")
def deploy_status(
    task: TaskOption, study: StudyOption = "default", checkpoints: CheckpointsRootOption = None
) -> None:
    """The deployed version and its history (JSON)."""
    pointer = _pointer(task, study, checkpoints)
    history = pointer.history()
    typer.echo(json.dumps({"task": task, "current": history[-1].to_dict() if history else None,
                           "history": [d.to_dict() for d in history]}, indent=2))  # fmt: skip


@deploy_app.command("rollback")
def deploy_rollback(
    task: TaskOption, study: StudyOption = "default", checkpoints: CheckpointsRootOption = None
) -> None:
    """Serve the previous version again (servers following the pointer switch at their next connection)."""
    entry = _pointer(task, study, checkpoints).rollback()
    typer.echo(json.dumps({"task": task, "version": entry.version, "iteration": entry.iteration,
                           "checkpoint": entry.checkpoint, "reason": entry.reason}))  # fmt: skip


def _camera_keys(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        camera, sep, key = pair.partition("=")
        if not sep or not camera or not key:
            raise ValueError(f"--camera-key {pair!r}: write camera=key, e.g. corner=observation/image")
        out[camera] = key
    return out


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
