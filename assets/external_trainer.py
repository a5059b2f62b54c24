"""The external trainer of pi^k as a step of the run, through Dagster Pipes.

The trainer runs as a subprocess of the step with Pipes' bootstrap variables in its environment: what it
logs with ``dagster_pipes`` (``pipes.log.info``) lands in the run's event log, what it prints is streamed
into the step's log line by line, its metric reports (``report_custom_message({"metrics": {...}})``) make
the asset's training curve, and facts it reports with ``report_asset_materialization(metadata=...)`` or
``report_custom_message({"reported": {...}})`` join the asset's metadata. A trainer that does not use
dagster-pipes still runs: its output is streamed, and only the metrics are missing. With
``external_policy.kubernetes.image`` set the trainer runs as a pod through dagster-k8s's Pipes client
instead, with the checkpoint root's volume mounted where the pipeline sees it.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from recap_core.external.config import ExternalPolicyConfig
from recap_core.external.process import TAIL_LINES, TrainerRun, run_streaming
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
            _collect(outcome, session.get_custom_messages(), session.get_results())
        return outcome

    return run


def k8s_runner(context: dg.AssetExecutionContext, config: ExternalPolicyConfig) -> Runner:
    """A runner that starts the trainer as a pod (dagster-k8s's ``PipesK8sClient``): its logs stream
    into the step's, its Pipes messages are read from them. The pod gets ``external_policy.env`` only,
    never this process's environment."""
    from dagster_k8s import PipesK8sClient

    from assets.k8s import external_trainer_pod_spec

    def run(command: Sequence[str], _env: Mapping[str, str], _cwd: str | None) -> TrainerRun:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dg.PreviewWarning)
            try:
                invocation = PipesK8sClient().run(
                    context=context,
                    image=config.kubernetes.image,
                    command=list(command),
                    namespace=config.kubernetes.namespace or None,
                    env=dict(config.env),
                    base_pod_spec=external_trainer_pod_spec(config.kubernetes),
                    extras={"trainer": config.name},
                )
            except Exception as error:  # the pod failed or never ran: its logs are in the step's
                lines = [line for line in str(error).splitlines() if line.strip()][-TAIL_LINES:]
                return TrainerRun(1, lines, time.perf_counter() - start)
        outcome = TrainerRun(0, [], time.perf_counter() - start)
        _collect(outcome, invocation.get_custom_messages(), invocation.get_results())
        return outcome

    return run


def _collect(outcome: TrainerRun, messages: Sequence[Any], results: Sequence[Any]) -> None:
    """The trainer's metric reports and reported facts, from its Pipes messages and materialisations."""
    for message in messages:
        if isinstance(message, Mapping):
            if isinstance(message.get(METRICS_KEY), Mapping):
                outcome.metrics.append(dict(message[METRICS_KEY]))
            if isinstance(message.get(REPORTED_KEY), Mapping):
                outcome.reported.update(message[REPORTED_KEY])
    for result in results:
        if isinstance(result, dg.MaterializeResult):
            outcome.reported.update(_plain(result.metadata or {}))


def _plain(metadata: Mapping[str, Any]) -> dict[str, Any]:
    return {key: getattr(value, "value", value) for key, value in metadata.items()}
