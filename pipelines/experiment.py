"""`recap experiment`: the evidence study materialised through Dagster into the persistent instance.

Same mechanism as `recap run` (in-process ``dagster.materialize`` against $DAGSTER_HOME), with the
baselines materialised in the same partition as each RECAP iteration, then the report asset.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from pipelines.partitions import register_partitions
from pipelines.resources import RecapResource
from pipelines.run import execute_job, materialize_iteration, materialize_pretraining, require_known_tasks
from recap_core.loop.experiment import ExperimentPlan
from recap_core.loop.report import Report, write_report


def materialize_report(
    recap: RecapResource, instance: dg.DagsterInstance, iterations: int, reports_root: Path | None
) -> dg.ExecuteInProcessResult:
    config = {"iterations": iterations, "reports_root": str(reports_root or "")}
    return execute_job(
        recap,
        instance,
        "study_report",
        "report",
        tags={"recap/trigger": "recap-experiment"},
        op_config={"ops": {"experiment_report": {"config": config}}},
    )


def run_experiment(
    recap: RecapResource,
    instance: dg.DagsterInstance,
    iterations: int,
    reports_root: Path | None = None,
    log: Callable[[str], None] = print,
) -> Report:
    """Pre-train, then for k = 0..K and every task: RECAP's iteration plus the baselines; then the report."""
    plan = ExperimentPlan.from_settings(recap.preset, recap.settings(), iterations)
    require_known_tasks(recap, list(plan.tasks))
    register_partitions(instance, list(plan.tasks), list(range(iterations + 1)))
    start = time.monotonic()
    log(f"experiment {plan.name}: pre-training, then iterations 0..{iterations} with the baselines")
    materialize_pretraining(recap, instance)
    for iteration in range(iterations + 1):
        for task in plan.tasks:
            materialize_iteration(
                recap, instance, task, iteration, "recap_iteration_with_baselines", trigger="recap-experiment"
            )
    materialize_report(recap, instance, iterations, reports_root)
    log(f"total {time.monotonic() - start:.0f}s")
    # The asset wrote the report; read the same ledger version back for the caller.
    directory = plan.report_dir(reports_root)
    return write_report(recap.ledger(), plan.tasks, iterations, directory, plan.title)
