"""A progress line per stage for runs launched from the terminal (`recap run`, `iterate`, `experiment`).

Dagster's own per-event log stays in the instance and the UI; the terminal gets one tqdm bar per run
that advances as each asset step ends and names the step in progress. It is a Dagster logger, so it sees
exactly the step events the UI shows, and it is only configured for runs the CLI launches in-process.
"""

from __future__ import annotations

import logging
import sys
import time

import dagster as dg
from tqdm import tqdm

STEP_ENDED = {"STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"}


class StageProgressHandler(logging.Handler):
    """Turns Dagster step events into a tqdm bar: ``iteration 1 of push-v3: 3/6 [00:41, policy]``."""

    def __init__(self, label: str, total: int) -> None:
        super().__init__(level=logging.DEBUG)
        self.bar = tqdm(total=total, desc=label, unit="stage", file=sys.stderr, dynamic_ncols=True)
        self.started: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "dagster_meta", {}).get("dagster_event")
        if event is None:
            return
        kind, step = event.event_type_value, event.step_key
        if kind == "STEP_START" and step:
            self.started[step] = time.monotonic()
            self.bar.set_postfix_str(step)
        elif kind in STEP_ENDED and step:
            seconds = time.monotonic() - self.started.pop(step, time.monotonic())
            outcome = {"STEP_SUCCESS": "done", "STEP_FAILURE": "FAILED", "STEP_SKIPPED": "skipped"}[kind]
            self.bar.set_postfix_str(f"{step} {outcome} in {seconds:.0f}s", refresh=False)
            self.bar.update(1)

    def finish(self) -> None:
        """Not ``close``: logging.config.dictConfig, which Dagster calls mid-run, closes every handler."""
        self.bar.close()


def progress_logger_name(run_id: str) -> str:
    return f"recap.progress.{run_id}"


def close_progress(run_id: str) -> None:
    """End the run's bar (the run's end is not a step event), so the next run's bar starts on a new line."""
    logger = logging.getLogger(progress_logger_name(run_id))
    for handler in logger.handlers:
        if isinstance(handler, StageProgressHandler):
            handler.finish()
    logger.handlers = []


@dg.logger(
    config_schema={"label": dg.Field(str), "total": dg.Field(int)},
    description="One progress bar per run on the terminal (in-process CLI runs only).",
)
def stage_progress(context: dg.InitLoggerContext) -> logging.Logger:
    logger = logging.getLogger(progress_logger_name(context.run_id))
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    if not logger.handlers:  # Dagster builds a run's loggers twice (orchestration, then execution): one bar
        config = context.logger_config
        logger.handlers = [StageProgressHandler(config["label"], config["total"])]
    return logger
