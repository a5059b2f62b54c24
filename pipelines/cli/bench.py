"""`recap bench ...`: every benchmark prints JSON (the code is in recap_core/bench/, one module per area)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from pipelines.cli.options import NumEnvsOption, command_group

bench_app = command_group(help="Benchmarks that print JSON.")

DEVICE_HELP = "auto (a CUDA GPU when there is one, else the CPU) | cpu | cuda | cuda:N"
PRECISION_HELP = "auto (bf16 autocast on a GPU that has it, else fp32) | fp32 | bf16"


@bench_app.command("train")
def bench_train(
    frames: int = typer.Option(100_000, help="Frames of synthetic episodes to train on."),
    processes: str = typer.Option("1,2", help="Comma-separated torchrun process counts."),
    reader: str = typer.Option("memory", help="memory | streaming"),
    epochs: int = typer.Option(1, help="Epochs per run."),
    batch_size: int = typer.Option(256, help="Global batch size (split over the processes)."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    precision: str = typer.Option("auto", help=PRECISION_HELP),
) -> None:
    """Policy training samples/s with 1 and N data-parallel processes (torchrun: gloo on the CPU, NCCL
    with a GPU per process); JSON."""
    from recap_core.bench.distributed import run_training_benchmark

    counts = tuple(int(count) for count in processes.split(","))
    result = run_training_benchmark(
        frames, counts, reader, epochs, batch_size, device=device, precision=precision
    )
    typer.echo(json.dumps(result, indent=2))


@bench_app.command("serve")
def bench_serve(
    requests: int = typer.Option(200, help="Requests per client."),
    clients: str = typer.Option("1,4", help="Comma-separated numbers of clients at once."),
    threads: int = typer.Option(1, help="torch threads of the server."),
) -> None:
    """`recap serve`: chunks/s, actions/s and round-trip latency for 1 and N robots, state only and one
    64 px camera; JSON."""
    from recap_core.bench.serving import run_serving_benchmark

    counts = tuple(int(count) for count in clients.split(","))
    typer.echo(json.dumps(run_serving_benchmark(requests, counts, threads), indent=2))


@bench_app.command("core")
def bench_core(
    json_output: bool = typer.Option(False, "--json", help="Print JSON only."),
    frames: int = typer.Option(200_000, help="Frames labelled by the value function."),
    train_batches: int = typer.Option(40, help="Training batches timed per model."),
    threads: int = typer.Option(1, help="torch threads."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    precision: str = typer.Option("auto", help=PRECISION_HELP),
) -> None:
    """Value labelling frames/s, value and policy training samples/s, policy act latency, on the
    device it reports."""
    from recap_core.bench.training import run_benchmark

    result = run_benchmark(
        frames=frames, train_batches=train_batches, threads=threads, device=device, precision=precision
    )
    if json_output:
        typer.echo(json.dumps(result))
    else:
        for key, value in result.items():
            typer.echo(f"{key:45s} {value}")


@bench_app.command("collect")
def bench_collect_command(
    task: Annotated[str, typer.Option(help="Task to benchmark.")] = "push-v3",
    episodes: Annotated[int, typer.Option(help="Episodes per measurement.")] = 64,
    num_envs: NumEnvsOption = 16,
    workers: Annotated[int, typer.Option(help="Environment worker processes.")] = 2,
    execute_steps: Annotated[int, typer.Option(help="Actions executed per chunk.")] = 8,
    horizon: Annotated[int, typer.Option(help="Chunk length H of the benchmark policy.")] = 10,
    max_steps: Annotated[int, typer.Option(help="Episode limit used in the benchmark.")] = 150,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (always JSON; kept for symmetry).")
    ] = True,
) -> None:
    """Environment steps/s for autonomous, supervised and demo collection (small MLP policy)."""
    from recap_core.bench.collect import bench_collect

    result = bench_collect(task, episodes, num_envs, workers, execute_steps, horizon, max_steps)
    typer.echo(json.dumps(result, indent=None if as_json else 2))


@bench_app.command("stream")
def bench_stream(
    sizes: Annotated[str, typer.Option(help="Comma-separated dataset sizes in frames.")] = "500000,2000000",
    budget_mb: Annotated[int, typer.Option(help="The streaming reader's memory budget (MiB).")] = 256,
    batch_size: int = 256,
    horizon: int = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Streaming vs in-memory training reads: samples/s, ratio and peak resident memory per size."""
    from recap_core.bench.streaming import run_streaming_benchmark

    frames = tuple(int(size) for size in sizes.split(","))
    result = run_streaming_benchmark(frames, budget_mb=budget_mb, batch=batch_size, horizon=horizon)
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))


@bench_app.command("lerobot-video")
def bench_lerobot_video(
    frames: int = 2_000,
    size: Annotated[int, typer.Option(help="Square frame size in pixels.")] = 64,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """LeRobot video features: export (mp4 encode) and import (decode to PNG) frames/s, one camera."""
    from recap_core.bench.store import run_lerobot_video_benchmark

    result = run_lerobot_video_benchmark(frames=frames, size=size)
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))


@bench_app.command("images")
def bench_images(
    frames: int = 20_000,
    image_size: Annotated[int, typer.Option(help="Square frame size in pixels.")] = 64,
    cameras: Annotated[str, typer.Option(help="Comma-separated camera names.")] = "front",
    batch_size: int = 256,
    horizon: int = 50,
    budget_mb: Annotated[int, typer.Option(help="The streaming reader's memory budget (MiB).")] = 64,
    streaming: Annotated[bool, typer.Option(help="Also time an epoch of the streaming reader.")] = True,
    device: Annotated[str, typer.Option(help=DEVICE_HELP)] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Camera frames: ingest, load + PNG decode, chunked reads (take, StepArrays, numpy), streaming."""
    from recap_core.bench.images import run_image_benchmark

    result = run_image_benchmark(
        frames=frames,
        image_size=image_size,
        cameras=tuple(c for c in cameras.split(",") if c),
        batch_size=batch_size,
        horizon=horizon,
        budget_mb=budget_mb,
        streaming=streaming,
        device=device,
    )
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))


@bench_app.command("store")
def bench_store(
    frames: int = 200_000,
    obs_dim: int = 39,
    action_dim: int = 4,
    batch_size: int = 256,
    horizon: int = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Ingest frames/s and random chunked reads: Lance take() vs StepArrays vs numpy ceiling."""
    from recap_core.bench.store import run_store_benchmark

    result = run_store_benchmark(
        frames=frames, obs_dim=obs_dim, action_dim=action_dim, batch_size=batch_size, horizon=horizon
    )
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))


@bench_app.command("launch")
def bench_launch(
    preset: Annotated[str, typer.Option(help="Preset of the timed iteration.")] = "tiny",
    task: Annotated[str, typer.Option(help="Task of the timed iteration.")] = "reach-v3",
    executors: Annotated[str, typer.Option(help="Comma-separated executors of the launched runs.")] = (
        "multiprocess,in_process"
    ),
    repeats: Annotated[int, typer.Option(help="Measurements of each way.")] = 1,
) -> None:
    """One iteration launched as the UI launches it (run worker, per executor) against `recap iterate`."""
    from pipelines.launch_benchmark import run_launch_benchmark

    result = run_launch_benchmark(preset, task, tuple(e for e in executors.split(",") if e), repeats)
    typer.echo(json.dumps(result))
