"""The study's report (Markdown tables + PNG plots from the ledger), written to disk and into the run."""

import dagster as dg

from assets.baselines import baselines
from assets.evaluation import evaluation
from assets.k8s import table_tags
from assets.metadata import data_version, image, materialized, step_context
from assets.resources import RecapResource
from recap_core.study.experiment import DEFAULT_ITERATIONS, ExperimentPlan

REPORT_GROUP = "experiment_report"


class ReportConfig(dg.Config):
    """Which study to report; ``reports_root`` empty means data_root()/reports."""

    iterations: int = DEFAULT_ITERATIONS
    reports_root: str = ""
    replicates: int = 1  # the resource's study with this many replicates (<study>-r0, -r1, ...)


@dg.asset(
    op_tags=table_tags(),
    group_name=REPORT_GROUP,
    deps=[evaluation, baselines],
    kinds={"markdown"},
    description="RECAP^K against SFT, AWR and PPO per task, every number read back from the Delta ledger.",
)
def experiment_report(
    context: dg.AssetExecutionContext, config: ReportConfig, recap: RecapResource
) -> dg.MaterializeResult:
    from pathlib import Path

    from recap_core.study.report import write_report  # matplotlib, scipy, the Delta ledger: by the step

    ctx = step_context(context, recap)
    plan = ExperimentPlan.from_settings(recap.preset, ctx.settings, config.iterations, config.replicates)
    directory = plan.report_dir(Path(config.reports_root) if config.reports_root else None)
    report = write_report(
        ctx.ledger_uri,
        plan.tasks,
        plan.iterations,
        directory,
        plan.title,
        studies=plan.studies,
        split=ctx.settings.eval_split,
    )

    def claims(outcome: str) -> list[str]:
        return [f"{t['task']}: {t['claim']}" for t in report.targets if t["verdict"] == outcome]

    return materialized(
        ctx,
        {
            "report": dg.MetadataValue.md(report.markdown),
            "report_path": dg.MetadataValue.path(str(directory / "report.md")),
            "ledger_version": report.ledger_version,
            "evaluations": report.rows.height,
            "targets_met": dg.MetadataValue.json(claims("met")),
            "targets_missed": dg.MetadataValue.json(claims("missed")),
            "targets_inconclusive": dg.MetadataValue.json(claims("inconclusive")),
            "targets_undefined": dg.MetadataValue.json(claims("undefined")),
            **{name.removesuffix(".png"): image(png, name) for name, png in report.images.items()},
        },
        version=data_version(report.ledger_version, report.markdown),
    )
