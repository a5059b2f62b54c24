"""`recap tasks`, `recap collect demos|rollouts` and `recap evaluate`: the simulated robot from the shell."""

from __future__ import annotations

import json
import math
import os
from itertools import islice
from pathlib import Path
from typing import Annotated

import typer

from pipelines.cli.options import (
    USER_ERROR_EXIT,
    ExecuteStepsOption,
    MaxStepsOption,
    NumEnvsOption,
    PolicyOption,
    PresetOption,
    StoreOption,
    TaskOption,
    WorkersOption,
    command_group,
)


def _task(name: str, max_steps: int | None):
    from recap_core.sim import get_task, with_max_steps

    try:
        return with_max_steps(get_task(name), max_steps)
    except KeyError as error:
        typer.echo(f"error: {error.args[0]}", err=True)
        raise typer.Exit(code=USER_ERROR_EXIT) from error


def _load_policy(path: str, beta: float | None):
    """The trained flow-matching policy, or a served one for ``ws://host:port`` (`recap serve`, or any
    openpi-protocol server); imported lazily so `recap collect demos` never loads torch models."""
    from recap_core.serving.client import is_remote

    if is_remote(path):
        return _remote_policy(path, beta)
    from recap_core.checkpoints import load_policy
    from recap_core.checkpoints.labels import policy_label

    checkpoint = Path(path)
    if not checkpoint.is_dir():
        typer.echo(f"error: policy checkpoint {path} is not a directory", err=True)
        raise typer.Exit(code=USER_ERROR_EXIT)
    return load_policy(checkpoint, beta=1.0 if beta is None else beta), policy_label(checkpoint)


def _remote_policy(url: str, beta: float | None):
    """A served policy; the server samples it with its own beta (``beta``, when given, must be it)."""
    from recap_core.serving.client import RemotePolicy
    from recap_core.serving.server import API_KEY_VARIABLE

    remote = RemotePolicy(url, api_key=os.environ.get(API_KEY_VARIABLE) or None)
    served_beta = float(remote.client.metadata.get("beta", 1.0))
    if beta is not None and beta != served_beta:
        remote.close()
        raise ValueError(
            f"--beta {beta:g}: {url} samples with beta {served_beta:g}; "
            "set it on the server (recap serve --beta)"
        )
    return remote, remote.label


def _store_in_batches(episodes, store_uri: str | None, total: int, desc: str, batch: int = 25) -> dict:
    """Write episodes in atomic batches as they are produced, with a progress bar."""
    from tqdm import tqdm

    from recap_core.sim.console import simulator_output_to_stderr
    from recap_core.store import EpisodeStore

    store = EpisodeStore(store_uri)
    added = skipped = failures = 0
    kinds: dict[str, int] = {}
    versions = store.versions()
    with simulator_output_to_stderr(), tqdm(total=total, unit="episode", desc=desc) as bar:
        while chunk := list(islice(episodes, batch)):
            result = store.add_episodes(chunk)
            added += len(result.added)
            skipped += len(result.skipped)
            versions = result.versions
            for episode in chunk:
                kinds[episode.kind] = kinds.get(episode.kind, 0) + 1
                failures += not episode.success
            bar.update(len(chunk))
    return {
        "added": added,
        "skipped": skipped,
        "failures": failures,
        "kinds": kinds,
        "versions": versions,
        "store": store.uri,
    }


def _clean(value: object) -> object:
    return None if isinstance(value, float) and math.isnan(value) else value


collect_app = command_group(help="Collect episodes with the simulated robot.")


def tasks() -> None:
    """Simulated tasks: name, prompt, episode limit."""
    from recap_core.sim import get_task, task_names

    for name in task_names():
        spec = get_task(name)
        typer.echo(f"{name:28s} max_steps={spec.max_steps:<4d} {spec.prompt}")


@collect_app.command("demos")
def collect_demos_command(
    task: TaskOption,
    episodes: Annotated[int, typer.Option(help="Number of demonstrations.")] = 50,
    seed_start: Annotated[int, typer.Option(help="First seed inside the training seed range.")] = 0,
    failure_share: Annotated[float, typer.Option(help="Share of episodes the operator gives up.")] = 0.1,
    operator_seed: Annotated[int, typer.Option(help="Seed of the operator's imperfections.")] = 0,
    operator: Annotated[str, typer.Option(help="collected_by value.")] = "operator:scripted-expert",
    workers: Annotated[int, typer.Option(help="Worker processes (0 = in-process).")] = 0,
    max_steps: MaxStepsOption = None,
    store: StoreOption = None,
) -> None:
    """Teleoperation-like demonstrations (kind=demo) into the episode store."""
    from recap_core.sim import DemoConfig, collect_demos, train_seeds

    spec = _task(task, max_steps)
    config = DemoConfig(failure_share=failure_share, seed=operator_seed)
    demos = collect_demos(spec, train_seeds(episodes, seed_start), config, operator=operator, workers=workers)
    typer.echo(json.dumps(_store_in_batches(demos, store, episodes, f"demos {task}")))


@collect_app.command("rollouts")
def collect_rollouts_command(
    policy: PolicyOption,
    task: TaskOption,
    episodes: Annotated[int, typer.Option(help="Number of rollouts.")] = 50,
    iteration: Annotated[int, typer.Option(help="RECAP iteration the data is for.")] = 1,
    intervention_share: Annotated[float, typer.Option(help="Share of rollouts a human watches.")] = 0.5,
    seed_start: Annotated[
        int | None,
        typer.Option(help="First training seed (default: the pipeline's block for the iteration)."),
    ] = None,
    num_envs: NumEnvsOption = 16,
    execute_steps: ExecuteStepsOption = None,
    workers: WorkersOption = 2,
    beta: Annotated[
        float | None,
        typer.Option(help="Classifier-free guidance weight (default 1; a served policy: the server's)."),
    ] = None,
    max_steps: MaxStepsOption = None,
    store: StoreOption = None,
) -> None:
    """Policy rollouts with human-gated interventions (autonomous/intervention) into the store."""
    from recap_core.sim import RolloutConfig, SupervisorConfig, collect_rollouts, train_seeds

    spec = _task(task, max_steps)
    chunk_policy, checkpoint_name = _load_policy(policy, beta)
    from recap_core.sim.rollouts import require_policy_fits

    require_policy_fits(chunk_policy, spec)  # before any environment starts
    from recap_core.loop.seeding import run_seeds
    from recap_core.loop.settings import LoopSettings

    start = run_seeds(LoopSettings()).rollout_start(iteration) if seed_start is None else seed_start
    rollouts = collect_rollouts(
        chunk_policy,
        spec,
        train_seeds(episodes, start),
        collected_by=checkpoint_name,
        iteration=iteration,
        config=RolloutConfig(num_envs=num_envs, execute_steps=execute_steps, workers=workers),
        supervisor=SupervisorConfig(share=intervention_share),
    )
    summary = _store_in_batches(rollouts, store, episodes, f"rollouts {task}")
    summary["collected_by"] = checkpoint_name
    typer.echo(json.dumps(summary))


def evaluate_command(
    policy: PolicyOption,
    task: TaskOption,
    episodes: Annotated[int, typer.Option(help="Held-out initial states to evaluate on.")] = 50,
    reset_seconds: Annotated[
        float | None,
        typer.Option(help="Robot time per reset, in seconds (default: the pipeline's reset time)."),
    ] = None,
    num_envs: NumEnvsOption = 16,
    execute_steps: ExecuteStepsOption = None,
    workers: WorkersOption = 2,
    beta: Annotated[
        float | None,
        typer.Option(help="Classifier-free guidance weight (default: the preset's; 1 = no CFG)."),
    ] = None,
    preset: PresetOption = "fast",
    max_steps: MaxStepsOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    output_dir: Annotated[
        Path | None,
        typer.Option(help="Where eval_info.json and videos go (default: $RECAP_HOME/eval/TASK/TIME)."),
    ] = None,
    split: Annotated[
        str, typer.Option(help="Held-out seeds: validation (for choosing settings) or test (to report).")
    ] = "validation",
    videos: Annotated[int, typer.Option(help="MP4 videos of the first N episodes (0 = none).")] = 0,
    video_size: Annotated[int, typer.Option(help="Video frame width and height, in pixels.")] = 128,
    camera: Annotated[
        str | None, typer.Option(help="Simulator camera for videos (default: the front view).")
    ] = None,
) -> None:
    """Success rate, mean success duration and throughput (with standard errors) on held-out seeds;
    eval_info.json (and MP4 videos with --videos N) in the output folder. The guidance weight and the
    reset time are the preset's, as in the pipeline's evaluation; the seeds are the validation split
    (for choosing settings), where the pipeline reports on the test split: both are printed."""
    import time
    from datetime import UTC, datetime

    from tqdm import tqdm

    from recap_core.locations import data_root
    from recap_core.sim import RolloutConfig, eval_seeds, evaluate_policy
    from recap_core.sim.console import simulator_output_to_stderr
    from recap_core.sim.eval_outputs import write_eval_info, write_videos

    if split not in ("validation", "test"):
        raise typer.BadParameter(f"--split must be validation or test, got {split!r}")
    from recap_core.loop.settings import preset as read_preset
    from recap_core.sim.rollouts import require_policy_fits

    pipeline = read_preset(preset)  # what the pipeline's evaluation of this preset uses
    from recap_core.serving.client import is_remote

    remote = is_remote(policy)
    requested_beta = beta
    beta = pipeline.beta if beta is None else beta
    if reset_seconds is None:  # count robot time as the pipeline's evaluations do
        reset_seconds = pipeline.reset_time_s
    if videos < 0 or video_size < 16:
        raise typer.BadParameter(f"--videos must be >= 0 and --video-size >= 16, got {videos}, {video_size}")
    spec = _task(task, max_steps)
    chunk_policy, checkpoint_name = _load_policy(policy, requested_beta if remote else beta)
    if remote:
        beta = float(chunk_policy.client.metadata.get("beta", 1.0))
    require_policy_fits(chunk_policy, spec)  # before any environment starts
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    directory = output_dir or data_root() / "eval" / task / stamp
    rollouts = []

    def finished(rollout) -> None:
        rollouts.append(rollout)
        bar.update(1)

    began = time.monotonic()
    with (
        simulator_output_to_stderr(),
        tqdm(total=episodes, unit="episode", desc=f"evaluate {task}") as bar,
    ):
        result = evaluate_policy(
            chunk_policy,
            spec,
            eval_seeds(episodes, split=split),
            reset_seconds=reset_seconds,
            config=RolloutConfig(num_envs=num_envs, execute_steps=execute_steps, workers=workers),
            on_episode=finished,
        )
        eval_seconds = time.monotonic() - began
        video_paths = write_videos(spec, rollouts, directory, videos, video_size, camera) if videos else []
    info = write_eval_info(
        directory,
        result,
        rollouts,
        policy=checkpoint_name,
        beta=beta,
        split=split,
        eval_seconds=eval_seconds,
        video_paths=video_paths,
    )
    metrics = {key: _clean(value) for key, value in result.as_dict().items()}
    metrics["policy"] = checkpoint_name
    metrics["split"] = split
    metrics["beta"] = beta
    metrics["pipeline"] = {"preset": preset, "beta": pipeline.beta, "split": pipeline.eval_split}
    metrics["eval_info"] = str(info)
    if as_json:
        typer.echo(json.dumps(metrics))
        return
    typer.echo(f"policy {checkpoint_name} on {task}: {result.episodes} held-out episodes ({split} seeds)")
    typer.echo(
        f"  sampled with      beta {beta:g} on {split} seeds; the pipeline's evaluation ({preset} preset) "
        f"uses beta {pipeline.beta:g} on {pipeline.eval_split} seeds"
    )
    typer.echo(f"  success rate      {result.success_rate:.3f} ± {result.success_rate_se:.3f}")
    typer.echo(
        f"  mean duration     {result.mean_success_duration_s:.2f} s ± "
        f"{result.mean_success_duration_se:.2f} s (successful episodes)"
    )
    typer.echo(
        f"  throughput        {result.throughput_per_hour:.1f} ± {result.throughput_se:.1f} successes/h"
    )
    typer.echo(f"  robot time        {result.robot_hours:.4f} h (reset {reset_seconds:g} s per episode)")
    typer.echo(f"  eval_info.json    {info}" + (f" ({len(video_paths)} videos beside it)" if videos else ""))
