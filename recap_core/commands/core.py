"""`recap` commands for the core area: checkpoint inspection, hub transfer and the core benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add this area's commands to the main app and its benchmark to `recap bench`."""
    core = typer.Typer(no_args_is_help=True, help="Value-function and policy checkpoints.")
    app.add_typer(core, name="core")

    @core.command("inspect")
    def inspect_checkpoint(path: Path) -> None:
        """Verify a checkpoint (recorded sha256, finite weights) and print its kind, method, architecture,
        parent, sha256 and training summary as JSON."""
        from recap_core.training import load_trained_policy, load_value_function
        from recap_core.training.checkpoints import checkpoint_sha256, read_checkpoint_config

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

    @core.command("push")
    def push(path: Path, repo_id: str, revision: str | None = None, private: bool = True) -> None:
        """Upload a checkpoint directory to a Hugging Face Hub repo."""
        from recap_core.training.hub import push_checkpoint

        typer.echo(push_checkpoint(path, repo_id, revision=revision, private=private))

    @core.command("pull")
    def pull(
        repo_id: str,
        revision: str | None = None,
        local_dir: Path | None = None,
        sha256: str | None = typer.Option(None, help="Fail unless the pulled checkpoint has this sha256."),
    ) -> None:
        """Download a checkpoint directory from a Hugging Face Hub repo and print its path."""
        from recap_core.training.hub import pull_checkpoint

        typer.echo(pull_checkpoint(repo_id, revision=revision, local_dir=local_dir, expected_sha256=sha256))

    @bench.command("train")
    def bench_train(
        frames: int = typer.Option(100_000, help="Frames of synthetic episodes to train on."),
        processes: str = typer.Option("1,2", help="Comma-separated torchrun process counts."),
        reader: str = typer.Option("memory", help="memory | streaming"),
        epochs: int = typer.Option(1, help="Epochs per run."),
        batch_size: int = typer.Option(256, help="Global batch size (split over the processes)."),
    ) -> None:
        """Policy training samples/s with 1 and N data-parallel processes (torchrun, gloo); JSON."""
        from recap_core.training.distributed_bench import run_training_benchmark

        counts = tuple(int(count) for count in processes.split(","))
        typer.echo(json.dumps(run_training_benchmark(frames, counts, reader, epochs, batch_size), indent=2))

    @bench.command("core")
    def bench_core(
        json_output: bool = typer.Option(False, "--json", help="Print JSON only."),
        frames: int = typer.Option(200_000, help="Frames labelled by the value function."),
        train_batches: int = typer.Option(40, help="Training batches timed per model."),
        threads: int = typer.Option(1, help="torch threads."),
    ) -> None:
        """Value labelling frames/s, value and policy training samples/s, policy act latency."""
        from recap_core.training.benchmark import run_benchmark

        result = run_benchmark(frames=frames, train_batches=train_batches, threads=threads)
        if json_output:
            typer.echo(json.dumps(result))
        else:
            for key, value in result.items():
                typer.echo(f"{key:45s} {value}")
