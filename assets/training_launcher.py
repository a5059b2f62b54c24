"""Training stages on one process or data-parallel over torchrun processes, launched through Dagster Pipes.

With ``training_processes`` = 1 (the default) a training asset calls its stage in the run's own process.
With ``external_policy`` set, the policy stage of RECAP runs the external trainer instead (also through
Pipes: assets/external_trainer.py).
With N > 1 the asset launches ``torchrun --standalone --nproc-per-node N -m assets.training_launcher``
through ``PipesSubprocessClient``: every rank takes the step's run context, joins the process group and
runs the same stage on its own episodes; rank 0 writes the checkpoint and sends the stage's result back over
Pipes, and the ranks' output streams into the asset's logs. On a GPU node each rank would take a GPU
(NCCL); on CPU the ranks use gloo.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import dagster_pipes

from recap_core.extraction import Method
from recap_core.loop.context import RunContext
from recap_core.loop.results import TrainingResult

if TYPE_CHECKING:
    from recap_core.training.distributed import Distributed

RESULT_MESSAGE = "recap_training_result"


def _stage(name: str, task: str, iteration: int, method: str) -> Callable[..., TrainingResult]:
    def run(ctx: RunContext, distributed: Distributed) -> TrainingResult:
        # torch: imported where a stage trains, not when the code location loads this module
        from recap_core.loop.training_stages import (
            pretrain_policy,
            pretrain_value,
            train_iteration_policy,
            train_iteration_value,
        )

        if name == "value_pretrained":
            return pretrain_value(ctx, distributed)
        if name == "policy_pretrained":
            return pretrain_policy(ctx, distributed)
        if name == "value":
            return train_iteration_value(ctx, task, iteration, distributed)
        if name == "policy":
            return train_iteration_policy(ctx, task, iteration, method, distributed)
        raise ValueError(f"unknown training stage {name!r}")

    return run


STAGES = ("value_pretrained", "policy_pretrained", "value", "policy")


def train_stage(
    context: dg.AssetExecutionContext | None,
    ctx: RunContext,
    stage: str,
    task: str = "",
    iteration: int = -1,
    method: str = Method.RECAP.value,
) -> TrainingResult:
    """Run one training stage as the settings ask: here, or on ``training_processes`` torchrun ranks,
    which receive this step's run context (its resolved settings included) rather than re-reading it."""
    settings = ctx.settings
    if stage == "policy" and method == Method.RECAP.value and settings.external_policy.enabled:
        return _external_policy(context, ctx, task, iteration)
    run = _stage(stage, task, iteration, method)
    if settings.training_processes <= 1 or context is None:
        from recap_core.training.distributed import SINGLE_PROCESS

        return run(ctx, SINGLE_PROCESS)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc-per-node={settings.training_processes}",
        "-m", "assets.training_launcher",
        "--stage", stage, "--task", task, "--iteration", str(iteration), "--method", method,
        "--context", json.dumps(ctx.to_dict()),
    ]  # fmt: skip
    with warnings.catch_warnings():
        # Dagster's own Pipes plumbing calls a preview API of itself; nothing for a user to act on
        warnings.simplefilter("ignore", dg.PreviewWarning)
        invocation = dg.PipesSubprocessClient().run(
            command=command, context=context, env={"OMP_NUM_THREADS": str(max(1, settings.torch_threads))}
        )
    results = [
        message["payload"]
        for message in invocation.get_custom_messages()
        if isinstance(message, dict) and message.get("kind") == RESULT_MESSAGE
    ]
    if len(results) != 1:
        raise RuntimeError(f"the torchrun ranks of {stage} reported {len(results)} results, expected one")
    return TrainingResult.from_dict(results[0])


def _external_policy(
    context: dg.AssetExecutionContext | None, ctx: RunContext, task: str, iteration: int
) -> TrainingResult:
    """pi^k from ``external_policy.train``: through Pipes in a step, a plain subprocess outside one."""
    from recap_core.external.process import run_streaming
    from recap_core.external.training import train_external_policy

    if context is None:
        return train_external_policy(ctx, task, iteration, run_streaming)
    from assets.external_trainer import k8s_runner, pipes_runner

    external = ctx.settings.external_policy
    if external.kubernetes.enabled:
        require_mounted(ctx.checkpoints.root, external.kubernetes.mount_path)
        runner = k8s_runner(context, external)
    else:
        runner = pipes_runner(context, external.name)
    return train_external_policy(ctx, task, iteration, runner)


def require_mounted(root: Path, mount_path: str) -> None:
    """The pod sees the volume at ``mount_path``: the checkpoint root (dataset and output) must be in it."""
    if not Path(root).resolve().is_relative_to(Path(mount_path)):
        raise ValueError(
            f"external_policy.kubernetes.mount_path {mount_path} does not contain the checkpoint root "
            f"{root}: the trainer's pod could not read the dataset nor write the policy"
        )


def main(argv: list[str] | None = None) -> None:
    """One torchrun rank: take the step's run context, join the group, train, and (rank 0) report back."""
    from recap_core.training.distributed import Distributed

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stage", choices=STAGES, required=True)
    parser.add_argument("--task", default="")
    parser.add_argument("--iteration", type=int, default=-1)
    parser.add_argument("--method", default=Method.RECAP.value)
    parser.add_argument("--context", required=True, help="the step's RunContext as JSON")
    args = parser.parse_args(argv)
    ctx = RunContext.from_dict(json.loads(args.context))
    distributed = Distributed.from_environment()
    run = _stage(args.stage, args.task, args.iteration, args.method)
    under_dagster = bool(os.environ.get(dagster_pipes.DAGSTER_PIPES_CONTEXT_ENV_VAR))
    if distributed.is_main and under_dagster:
        with dagster_pipes.open_dagster_pipes() as pipes:
            pipes.log.info(f"{args.stage}: training on {distributed.world_size} processes")
            result = run(ctx, distributed)
            pipes.report_custom_message({"kind": RESULT_MESSAGE, "payload": result.to_dict()})
    else:
        result = run(ctx, distributed)
        if distributed.is_main:
            print(json.dumps(result.to_dict()))


if __name__ == "__main__":
    main()
