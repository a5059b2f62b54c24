"""Training stages on one process or data-parallel over torchrun processes, launched through Dagster Pipes.

With ``training_processes`` = 1 (the default) a training asset calls its stage in the run's own process.
With N > 1 the asset launches ``torchrun --standalone --nproc-per-node N -m pipelines.distributed_training``
through ``PipesSubprocessClient``: every rank rebuilds the resource, joins the process group and runs the
same stage on its own episodes; rank 0 writes the checkpoint and sends the stage's result back over
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

import dagster as dg
import dagster_pipes

from pipelines.resources import RecapResource
from recap_core.loop.results import TrainingResult
from recap_core.loop.settings import LoopSettings
from recap_core.loop.training_stages import (
    pretrain_policy,
    pretrain_value,
    train_iteration_policy,
    train_iteration_value,
)
from recap_core.methods import Method
from recap_core.store import EpisodeStore
from recap_core.training.distributed import SINGLE_PROCESS, Distributed

RESULT_MESSAGE = "recap_training_result"


def _stage(name: str, task: str, iteration: int, method: str) -> Callable[..., TrainingResult]:
    def run(
        store: EpisodeStore, settings: LoopSettings, root: Path, distributed: Distributed
    ) -> TrainingResult:
        if name == "value_pretrained":
            return pretrain_value(store, settings, root, distributed)
        if name == "policy_pretrained":
            return pretrain_policy(store, settings, root, distributed)
        if name == "value":
            return train_iteration_value(store, settings, root, task, iteration, distributed)
        if name == "policy":
            return train_iteration_policy(store, settings, root, task, iteration, method, distributed)
        raise ValueError(f"unknown training stage {name!r}")

    return run


STAGES = ("value_pretrained", "policy_pretrained", "value", "policy")


def train_stage(
    context: dg.AssetExecutionContext | None,
    recap: RecapResource,
    stage: str,
    task: str = "",
    iteration: int = -1,
    method: str = Method.RECAP.value,
) -> TrainingResult:
    """Run one training stage as the settings ask: here, or on ``training_processes`` torchrun ranks."""
    settings = recap.settings()
    run = _stage(stage, task, iteration, method)
    if settings.training_processes <= 1 or context is None:
        return run(recap.store(), settings, recap.checkpoints(), SINGLE_PROCESS)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc-per-node={settings.training_processes}",
        "-m", "pipelines.distributed_training",
        "--stage", stage, "--task", task, "--iteration", str(iteration), "--method", method,
        "--resource", json.dumps(recap.fields()),
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


def main(argv: list[str] | None = None) -> None:
    """One torchrun rank: rebuild the resource, join the group, train, and (rank 0) report back."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stage", choices=STAGES, required=True)
    parser.add_argument("--task", default="")
    parser.add_argument("--iteration", type=int, default=-1)
    parser.add_argument("--method", default=Method.RECAP.value)
    parser.add_argument("--resource", required=True, help="RecapResource fields as JSON")
    args = parser.parse_args(argv)
    recap = RecapResource(**json.loads(args.resource))
    distributed = Distributed.from_environment()
    run = _stage(args.stage, args.task, args.iteration, args.method)
    under_dagster = bool(os.environ.get(dagster_pipes.DAGSTER_PIPES_CONTEXT_ENV_VAR))
    if distributed.is_main and under_dagster:
        with dagster_pipes.open_dagster_pipes() as pipes:
            pipes.log.info(f"{args.stage}: training on {distributed.world_size} processes")
            result = run(recap.store(), recap.settings(), recap.checkpoints(), distributed)
            pipes.report_custom_message({"kind": RESULT_MESSAGE, "payload": result.to_dict()})
    else:
        result = run(recap.store(), recap.settings(), recap.checkpoints(), distributed)
        if distributed.is_main:
            print(json.dumps(result.to_dict()))


if __name__ == "__main__":
    main()
