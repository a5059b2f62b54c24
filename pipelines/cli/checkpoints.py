"""`recap checkpoints inspect|push|pull`: verify a checkpoint and move it to and from the Hugging Face Hub."""

from __future__ import annotations

import json
from pathlib import Path

import typer

checkpoints_app = typer.Typer(no_args_is_help=True, help="Value-function and policy checkpoints.")


@checkpoints_app.command("inspect")
def inspect_checkpoint(path: Path) -> None:
    """Verify a checkpoint (recorded sha256, finite weights) and print its kind, method, architecture,
    parent, sha256 and training summary as JSON."""
    from recap_core.checkpoints import load_trained_policy, load_value_function
    from recap_core.checkpoints.format import checkpoint_sha256, read_checkpoint_config

    config = read_checkpoint_config(path)
    # loading is the verification: sha256 against config.json, strict tensor match, finiteness
    (load_value_function if config.get("kind") == "value" else load_trained_policy)(path)
    history = (config.get("training") or {}).get("history") or {}
    summary = {
        "path": str(path.resolve()),
        "sha256": checkpoint_sha256(path),
        "kind": config["kind"],
        "method": config["method"],
        "architecture": config["architecture"],
        "parent": config["parent"],
        "created_at": config["created_at"],
        "epochs_run": history.get("epochs_run"),
        "best_epoch": history.get("best_epoch"),
        "final_val_loss": (history.get("val_loss") or [None])[-1],
        "verified": True,
    }
    typer.echo(json.dumps(summary, indent=2))


@checkpoints_app.command("push")
def push(path: Path, repo_id: str, revision: str | None = None, private: bool = True) -> None:
    """Upload a checkpoint directory to a Hugging Face Hub repo."""
    from recap_core.checkpoints.hub_push import push_checkpoint

    typer.echo(push_checkpoint(path, repo_id, revision=revision, private=private))


@checkpoints_app.command("pull")
def pull(
    repo_id: str,
    revision: str | None = None,
    local_dir: Path | None = None,
    sha256: str | None = typer.Option(None, help="Fail unless the pulled checkpoint has this sha256."),
) -> None:
    """Download a checkpoint directory from a Hugging Face Hub repo and print its path."""
    from recap_core.checkpoints.hub_pull import pull_checkpoint

    typer.echo(pull_checkpoint(repo_id, revision=revision, local_dir=local_dir, expected_sha256=sha256))
