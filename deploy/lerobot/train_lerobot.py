"""Run lerobot-train as the pipeline's external trainer, with its loss curve reported through Dagster Pipes.

    python train_lerobot.py [--lerobot-train PATH] [--keep-training-state] -- <lerobot-train arguments>

lerobot-train itself knows nothing of Dagster: it logs ``step:200 smpl:2K ep:... loss:0.512 grdn:...``
lines. This wrapper (in the LeRobot environment, beside lerobot-train) runs it as a child, streams every
line to its own stdout (the pipeline shows them in the step's log), parses the step and loss of each log
line and sends them as ``{"metrics": {"step": ..., "loss": ...}}`` (the ``policy`` asset's training
curve), then reports the final step, loss and the ``pretrained_model`` folder it wrote. It exits with
lerobot-train's exit code, so a failed training fails the step.

``training_state`` (the optimizer and scheduler state, twice the model's size for Adam) is removed after
a successful run unless ``--keep-training-state``: it only serves to resume lerobot-train, and the
pipeline hashes and keeps every file of every published checkpoint version.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from dagster_pipes import DAGSTER_PIPES_CONTEXT_ENV_VAR, PipesContext, open_dagster_pipes

# MetricsTracker.__str__: step:{format_big_number(steps)} ... loss:{avg:.3f} (lerobot/utils/logging_utils.py)
LOG_LINE = re.compile(r"\bstep:(?P<step>[\d.]+[KMBTQ]?)\b.*?\bloss:(?P<loss>[-+\d.eE]+|nan|inf)")
SUFFIX = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12, "Q": 10**15}


def parse_log_line(line: str) -> dict[str, float | int] | None:
    """{"step", "loss"} of a lerobot-train training log line, None for any other line. Steps past 1000
    are printed rounded (``1K``, ``1.5K``), so such a step is as exact as the log."""
    match = LOG_LINE.search(line)
    if match is None:
        return None
    number = match["step"]
    suffix = number[-1] if number[-1] in SUFFIX else ""
    step = round(float(number.removesuffix(suffix) if suffix else number) * SUFFIX[suffix])
    return {"step": int(step), "loss": float(match["loss"])}


def output_dir(arguments: list[str]) -> Path | None:
    """lerobot-train's ``--output_dir`` among its arguments."""
    for i, argument in enumerate(arguments):
        if argument.startswith("--output_dir="):
            return Path(argument.split("=", 1)[1])
        if argument == "--output_dir" and i + 1 < len(arguments):
            return Path(arguments[i + 1])
    return None


def pretrained_models(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("pretrained_model") if (p / "config.json").is_file())


def run(lerobot_train: str, arguments: list[str], pipes: PipesContext | None, keep_state: bool) -> int:
    command = [lerobot_train, *arguments]
    print("running " + " ".join(command), flush=True)
    last: dict[str, float | int] = {}
    reports = 0
    # lerobot-train's tqdm bar redraws with carriage returns, and every redraw reads as a line here and
    # in the pipeline's log (one per step): a long minimum interval (tqdm takes defaults from TQDM_*
    # variables) leaves about one per loss log line
    env = {**os.environ, "TQDM_MININTERVAL": os.environ.get("TQDM_MININTERVAL", "30")}
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
        errors="replace",
        bufsize=1,
    )
    assert process.stdout is not None
    for raw in process.stdout:
        line = raw.rstrip("\n")
        print(line, flush=True)
        metrics = parse_log_line(line)
        if metrics is not None:
            last = metrics
            reports += 1
            if pipes is not None:
                pipes.report_custom_message({"metrics": metrics})
    code = process.wait()
    if code != 0:
        print(f"lerobot-train exited with {code}", file=sys.stderr, flush=True)
        return code
    reported: dict[str, Any] = {"loss_reports": reports, **{f"final_{k}": v for k, v in last.items()}}
    out = output_dir(arguments)
    if out is not None:
        models = pretrained_models(out)
        reported["pretrained_models"] = len(models)
        if models:
            reported["pretrained_model"] = str(models[-1].relative_to(out.parent))
        if not keep_state:
            for state in sorted(out.rglob("training_state")):
                if state.is_dir() and not state.is_symlink():
                    shutil.rmtree(state)
    print(f"lerobot-train done: {reported}", flush=True)
    if pipes is not None:
        pipes.report_custom_message({"reported": reported})
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--lerobot-train",
        default=str(Path(sys.executable).parent / "lerobot-train"),
        help="the lerobot-train executable (default: beside this interpreter)",
    )
    parser.add_argument("--keep-training-state", action="store_true")
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help="-- then lerobot-train's arguments")
    args = parser.parse_args()
    arguments = args.arguments[1:] if args.arguments[:1] == ["--"] else args.arguments
    # outside the pipeline (a manual run) there is no Pipes channel: train all the same
    pipes_context: AbstractContextManager[PipesContext | None] = (
        open_dagster_pipes() if DAGSTER_PIPES_CONTEXT_ENV_VAR in os.environ else nullcontext(None)
    )
    with pipes_context as pipes:
        return run(args.lerobot_train, arguments, pipes, args.keep_training_state)


if __name__ == "__main__":
    sys.exit(main())
