"""pi^k trained by an external command: the labelled dataset in, a checkpoint of its own format out,
published as a version of pi^k's slot with the same lineage as this project's flow policy.

The stage (1) writes the labelled LeRobot dataset of (task, iteration) (the ``labelled_dataset`` asset's
writer: the data pi^k is trained on, indicator prompts included), (2) runs ``external_policy.train``
with the dataset, the base model, an empty output directory, the seed and a JSON file of the resolved
settings, through the runner it is given (Dagster Pipes in the pipeline, a plain subprocess elsewhere),
and (3) publishes the output directory, named by one sha256 over its files (checkpoints/external.py),
with the run's record: the command, its exit code, the dataset's path, sha256 and lineage, the base
model, the metrics the trainer reported. A non-zero exit publishes nothing and names the command and its
last log lines; the previous version of the slot stays current.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from recap_core.checkpoints import CheckpointRef, checkpoint_sha256
from recap_core.checkpoints.external import listed_files, write_external_manifest
from recap_core.checkpoints.layout import POLICY, write_lineage
from recap_core.external.config import render
from recap_core.external.process import TrainerRun, command_environment, failure
from recap_core.extraction import Method
from recap_core.loop.context import RunContext
from recap_core.loop.labelled_dataset import write_labelled_dataset
from recap_core.loop.results import TrainingResult
from recap_core.loop.seeding import run_seeds
from recap_core.training.config import TrainingHistory

# runner(command, environment, working directory) -> TrainerRun
Runner = Callable[[Sequence[str], Mapping[str, str], str | None], TrainerRun]


def train_external_policy(ctx: RunContext, task: str, iteration: int, runner: Runner) -> TrainingResult:
    """Train pi^k of ``task`` with the configured external trainer and publish what it wrote."""
    settings, layout = ctx.settings, ctx.checkpoints
    external = settings.external_policy
    dataset = write_labelled_dataset(ctx, task, iteration, video=external.video)
    dataset_sha = _folder_sha256(dataset.path)
    target = layout.iteration(POLICY, task, iteration, Method.RECAP.value)
    seed = run_seeds(settings).policy_network(iteration)
    pretrained = _pretrained(external.pretrained)
    with tempfile.TemporaryDirectory(prefix="recap-external-train-") as work:
        settings_file = Path(work) / "settings.json"
        settings_file.write_text(json.dumps(settings.to_dict(), indent=2, sort_keys=True))
        with layout.publishing(target) as scratch:
            scratch.mkdir(parents=True)
            values = {
                "dataset": dataset.path,
                "pretrained": external.pretrained,
                "output": scratch,
                "task": task,
                "iteration": iteration,
                "seed": seed,
                "settings": settings_file,
            }
            command = render(external.train, values)
            run = runner(command, command_environment(external.env), external.cwd or None)
            if run.exit_code != 0:
                what = f"external trainer {external.name!r},"
                raise failure(what, command, f"exited with {run.exit_code}", run.log_tail)
            record = {
                "name": external.name,
                "command": list(external.train),  # the template: the same trainer gives the same name
                "command_line": shlex.join(command),
                "pretrained": pretrained,
                "exit_code": run.exit_code,
                "seconds": round(run.seconds, 3),
                "seed": seed,
                "task": task,
                "iteration": iteration,
                "dataset": {
                    "path": str(dataset.path),
                    "sha256": dataset_sha,
                    "episodes": dataset.episodes,
                    "frames": dataset.frames,
                    "lineage": dataset.lineage,
                },
                "metrics": run.metrics,
                "reported": run.reported,
            }
            manifest = write_external_manifest(scratch, record)
            write_lineage(
                scratch,
                {
                    "versions": dataset.lineage["table_versions"],
                    "episodes": dataset.episodes,
                    "steps": dataset.frames,
                    "task": task,
                    "iteration": iteration,
                    "method": Method.RECAP.value,
                    "external": external.name,
                    "dataset_sha256": dataset_sha,
                    "value_checkpoint": dataset.lineage["value_checkpoint"],
                    "files": len(manifest["files"]),
                },
            )
    losses = [float(m["loss"]) for m in run.metrics if isinstance(m.get("loss"), int | float)]
    steps = [int(m["step"]) for m in run.metrics if isinstance(m.get("step"), int)]
    history = TrainingHistory(
        train_loss=losses,
        seconds=run.seconds,
        gradient_steps=max(steps, default=0),
        n_train_steps=dataset.frames,
        n_train_episodes=dataset.episodes,
        weights="external",
    )
    extra = {
        "external": external.name,
        "exit_code": run.exit_code,
        "dataset": str(dataset.path),
        "dataset_sha256": dataset_sha,
        "dataset_frames": dataset.frames,
        "command": shlex.join(command),
        "trainer_metric_reports": len(run.metrics),
        **{f"trainer/{key}": value for key, value in run.reported.items()},
    }
    parent = CheckpointRef(pretrained["path"], pretrained["sha256"]) if pretrained.get("sha256") else None
    return TrainingResult(
        checkpoint=CheckpointRef(str(target.resolve()), checkpoint_sha256(target)),
        parent=parent,
        versions=dict(dataset.lineage["table_versions"]),
        episodes=dataset.episodes,
        steps=dataset.frames,
        episodes_per_iteration={},
        history=history,
        extra=extra,
    )


def _pretrained(reference: str) -> dict[str, Any]:
    """The base model as lineage names it: a local folder or file by the sha256 of its files, a Hub id
    (or anything else the trainer resolves itself) by its name alone."""
    if not reference:
        return {"ref": "", "path": "", "sha256": ""}
    path = Path(reference).expanduser()
    if path.exists():
        sha = _folder_sha256(path) if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
        return {"ref": reference, "path": str(path.resolve()), "sha256": sha}
    return {"ref": reference, "path": "", "sha256": ""}


def _folder_sha256(folder: Path) -> str:
    """One sha256 over a folder's files (relative paths and contents): a dataset's or a model's version."""
    return hashlib.sha256(json.dumps(listed_files(folder), sort_keys=True).encode()).hexdigest()
