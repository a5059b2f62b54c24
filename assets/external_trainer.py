"""The external trainer of pi^k as a step of the run, through Dagster Pipes.

The trainer runs as a subprocess of the step with Pipes' bootstrap variables in its environment: what it
logs with ``dagster_pipes`` (``pipes.log.info``) lands in the run's event log, what it prints is streamed
into the step's log line by line, its metric reports (``report_custom_message({"metrics": {...}})``) make
the asset's training curve, and facts it reports with ``report_asset_materialization(metadata=...)`` or
``report_custom_message({"reported": {...}})`` join the asset's metadata. A trainer that does not use
dagster-pipes still runs: its output is streamed, and only the metrics are missing.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from recap_core.external.process import TrainerRun, run_streaming
from recap_core.external.training import Runner

METRICS_KEY, REPORTED_KEY = "metrics", "reported"


def pipes_runner(context: dg.AssetExecutionContext, name: str) -> Runner:
    """A runner that starts the trainer inside a Pipes session of ``context``'s step."""

    def run(command: Sequence[str], env: Mapping[str, str], cwd: str | None) -> TrainerRun:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dg.PreviewWarning)
            with dg.open_pipes_session(
                context=context,
                context_injector=dg.PipesTempFileContextInjector(),
                message_reader=dg.PipesTempFileMessageReader(),
                extras={"trainer": name},
            ) as session:
                bootstrap = session.get_bootstrap_env_vars()
                outcome = run_streaming(
                    command, {**env, **bootstrap}, cwd, lambda line: context.log.info(f"[{name}] {line}")
                )
            # messages are all read once the session has closed
            for message in session.get_custom_messages():
                if isinstance(message, Mapping):
                    if isinstance(message.get(METRICS_KEY), Mapping):
                        outcome.metrics.append(dict(message[METRICS_KEY]))
                    if isinstance(message.get(REPORTED_KEY), Mapping):
                        outcome.reported.update(message[REPORTED_KEY])
            for result in session.get_results():
                if isinstance(result, dg.MaterializeResult):
                    outcome.reported.update(_plain(result.metadata or {}))
        return outcome

    return run


def _plain(metadata: Mapping[str, Any]) -> dict[str, Any]:
    return {key: getattr(value, "value", value) for key, value in metadata.items()}
