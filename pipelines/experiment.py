"""`recap experiment`: the evidence study materialised through Dagster into the persistent instance.

Same mechanism as `recap run` (in-process ``dagster.materialize`` against $DAGSTER_HOME), with the
baselines materialised in the same partition as each RECAP iteration, then the report asset.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from assets.partitions import register_partitions
from assets.resources import RecapResource
from pipelines.jobs import ITERATION_WITH_BASELINES_JOB, REPORT_JOB
from pipelines.run import execute_job, materialize_iteration, materialize_pretraining, require_known_tasks
from recap_core.study.experiment import ExperimentPlan
from recap_core.study.report import Report, write_report


def materialize_report(
    recap: RecapResource,
    instance: dg.DagsterInstance,
    iterations: int,
    reports_root: Path | None,
    replicates: int = 1,
) -> dg.ExecuteInProcessResult:
    config = {"iterations": iterations, "reports_root": str(reports_root or ""), "replicates": replicates}
    return execute_job(
        recap,
        instance,
        REPORT_JOB,
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
    replicates: int = 0,
    report_only: bool = False,
    only_replicate: int | None = None,
) -> Report:
    """For each replicate (its own study namespace and training seeds): pre-train, then for k = 0..K and
    every task RECAP's iteration plus the baselines; then one report over the replicates.

    ``replicates`` 0 takes the preset's number. ``only_replicate`` runs that one replicate (0-based) and
    reports over whichever of the study's replicates the ledger holds, so a study of five can be run over
    several sittings, or on several machines sharing the ledger. The final iteration's policies are
    evaluated on the preset's ``final_eval_episodes`` test seeds (the claims' policies), the others on
    ``eval_episodes``.

    Re-running is idempotent and resumes: stored episodes and seeds are skipped, and each stage replaces
    only its own outputs. ``report_only`` rewrites the report from the ledger alone, so a changed plot
    or a study trained elsewhere needs no retraining.
    """
    settings = recap.settings()
    replicates = replicates or settings.replicates
    plan = ExperimentPlan.from_settings(recap.preset, settings, iterations, replicates)
    if only_replicate is not None and not 0 <= only_replicate < replicates:
        raise ValueError(
            f"replicate must be in [0, {replicates}) for a study of {replicates}, got {only_replicate}"
        )
    require_known_tasks(recap, list(plan.tasks))
    if not report_only:
        register_partitions(instance, list(plan.tasks), list(range(iterations + 1)))
    start = time.monotonic()
    for replicate, study in enumerate([] if report_only else plan.studies):
        if only_replicate is not None and replicate != only_replicate:
            continue
        mine = recap.for_replicate(study, replicate)
        began = time.monotonic()
        log(f"study {study} (replicate {replicate + 1} of {replicates}): pre-training, then iterations "
            f"0..{iterations} with the baselines")  # fmt: skip
        materialize_pretraining(mine, instance)
        for iteration in range(iterations + 1):
            final = iteration == iterations and settings.final_eval_episodes > 0
            evaluating = mine.with_eval_episodes(settings.final_eval_episodes) if final else mine
            for task in plan.tasks:
                materialize_iteration(
                    evaluating,
                    instance,
                    task,
                    iteration,
                    ITERATION_WITH_BASELINES_JOB,
                    trigger="recap-experiment",
                )
        log(f"study {study}: {time.monotonic() - began:.0f}s")
    materialize_report(recap, instance, iterations, reports_root, replicates)
    log(f"total {time.monotonic() - start:.0f}s")
    # The asset wrote the report; read it back for the caller (the ledger has not changed since).
    directory = plan.report_dir(reports_root)
    return write_report(
        recap.ledger(),
        plan.tasks,
        iterations,
        directory,
        plan.title,
        studies=plan.studies,
        split=settings.eval_split,
    )
