"""`recap checkpoints inspect|push|pull`: verify a checkpoint and move it to and from the Hugging Face Hub."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pipelines.cli.options import StudyOption, command_group

checkpoints_app = command_group(help="Value-function and policy checkpoints.")


AllowLegacyOption = Annotated[
    bool,
    typer.Option(
        "--allow-legacy",
        help="Load a checkpoint that records no content sha256 (written before its config was covered); "
        "it is reported as not verified.",
    ),
]


@checkpoints_app.command("inspect")
def inspect_checkpoint(path: Path, allow_legacy: AllowLegacyOption = False) -> None:
    """Verify a checkpoint (its content sha256 over the weights and the config that determines its
    behaviour, strict tensors, finite weights) and print its kind, method, architecture, parent, sha256
    and training summary as JSON; "verified" is false only for a legacy checkpoint loaded on request."""
    from recap_core.checkpoints import load_trained_policy, load_value_function
    from recap_core.checkpoints.format import read_checkpoint_config
    from recap_core.checkpoints.verification import verify_checkpoint

    config = read_checkpoint_config(path)
    if config.get("kind") not in ("value", "policy"):
        raise ValueError(f"{path}: config.json kind {config.get('kind')!r} is neither 'value' nor 'policy'")
    # loading is the verification: content sha256, strict tensor match, finiteness
    (load_value_function if config["kind"] == "value" else load_trained_policy)(path, allow_legacy)
    verified = verify_checkpoint(path, allow_legacy)
    history = (config.get("training") or {}).get("history") or {}
    summary = {
        "path": str(path.resolve()),
        "sha256": verified.sha256,
        "kind": config["kind"],
        "method": config["method"],
        "architecture": config["architecture"],
        "parent": config["parent"],
        "created_at": config.get("created_at"),
        "epochs_run": history.get("epochs_run"),
        "best_epoch": history.get("best_epoch"),
        "final_val_loss": (history.get("val_loss") or [None])[-1],
        "verified": not verified.legacy,
        "legacy": verified.legacy,
    }
    typer.echo(json.dumps(summary, indent=2))


@checkpoints_app.command("gc")
def collect_garbage_command(
    study: StudyOption = "default",
    delete: Annotated[
        bool, typer.Option("--delete", help="Remove what nothing names (default: list it).")
    ] = False,
) -> None:
    """Checkpoint versions nothing names: neither current, nor named by a stored episode, derived row or
    ledger row of the study, nor by a kept version's lineage. Lists them as JSON; --delete removes them."""
    from recap_core.checkpoints.garbage import collect_garbage
    from recap_core.locations import require_study_name
    from recap_core.loop.context import RunContext
    from recap_core.loop.references import referenced_checkpoints
    from recap_core.loop.settings import LoopSettings

    ctx = RunContext.for_study(LoopSettings(study=require_study_name(study)))
    report = collect_garbage(ctx.checkpoints, set(referenced_checkpoints(ctx)), delete=delete)
    typer.echo(json.dumps(report.to_dict(), indent=2))


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
