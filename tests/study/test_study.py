"""The evidence study on the tiny preset: it runs through Dagster, the baselines are trained from pi_pre on
exactly V^k's data, and every number in the report is read back from the Delta ledger.

One module-scoped experiment (pre-training, iterations 0 and 1 of one Meta-World task, with baselines)
feeds every assertion. The learning outcome is not tested here: the tiny preset trains for seconds.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from deltalake import DeltaTable
from pandera.errors import SchemaError
from pipeline_helpers import latest_metadata, tiny_recap
from typer.testing import CliRunner

from pipelines.cli.main import app
from pipelines.experiment import run_experiment
from recap_core.checkpoints import CheckpointRef, checkpoint_sha256, read_checkpoint_config
from recap_core.checkpoints.layout import CheckpointLayout
from recap_core.extraction import BASELINES
from recap_core.ledger import read_ledger, record_evaluations
from recap_core.loop.results import TrainingResult
from recap_core.loop.training_stages import iteration_value_versions
from recap_core.outcomes import evaluation_outcomes, read_outcomes, record_outcomes, summarize_outcomes
from recap_core.store.query import run_query
from recap_core.study.baselines import BaselineOutcome, audit_baselines, baseline_lineage, train_baseline
from recap_core.study.report import write_report
from recap_core.training import TrainingHistory

TASK = "reach-v3"
ITERATIONS = 1


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("experiment")
    recap = tiny_recap(root)
    with dg.instance_for_test(temp_dir=str(root / "dagster")) as instance:
        report = run_experiment(
            recap, instance, ITERATIONS, reports_root=root / "reports", log=lambda _: None
        )
        yield recap, instance, report, root


def test_every_method_and_iteration_is_in_the_ledger(study):
    recap, _, report, _ = study
    ledger = read_ledger(recap.ledger()).filter(task=TASK)
    found = set(zip(ledger["method"].to_list(), ledger["iteration"].to_list(), strict=True))
    expected = {(m, k) for m in ("recap", "recap_beta1", *BASELINES) for k in range(ITERATIONS + 1)}
    assert found == expected
    assert report.rows.height == len(expected)
    # Every method is evaluated on the same held-out seeds.
    assert ledger["eval_seeds"].n_unique() == 1


def test_baselines_start_from_pi_pre_on_the_value_functions_table_versions(study):
    recap, instance, _, _ = study
    root = recap.checkpoint_layout()
    pi_pre = root.pretrained("policy")
    for iteration in range(ITERATIONS + 1):
        versions = iteration_value_versions(root, TASK, iteration)
        recap_lineage = root.read_lineage(root.iteration("policy", TASK, iteration))
        for method in BASELINES:
            lineage = baseline_lineage(root, TASK, iteration, method)
            read_versions = lineage["versions"]
            for table in ("episodes", "steps"):  # exactly V^k's data
                assert read_versions[table] == versions[table], (method, iteration, table)
            if method in ("awr", "ppo"):  # and the advantages written under V^k after it was trained
                assert read_versions["advantages"] >= versions.get("advantages", 0), (method, read_versions)
            assert lineage["method"] == method
            assert lineage["episodes_per_iteration"] == recap_lineage["episodes_per_iteration"]
            assert lineage["steps"] == recap_lineage["steps"]
            parent = read_checkpoint_config(root.iteration("policy", TASK, iteration, method))["parent"]
            assert Path(parent["path"]) == pi_pre.resolve()
            assert parent["sha256"] == checkpoint_sha256(pi_pre)
        meta = latest_metadata(instance, "baselines", f"{iteration}|{TASK}")
        assert {t: meta["awr_table_versions"][t] for t in ("episodes", "steps")} == {
            t: versions[t] for t in ("episodes", "steps")
        }
        assert meta["ppo_parent_sha256"] == checkpoint_sha256(pi_pre)
        # equal budgets: every method took pi^k's number of gradient steps and kept its last weights.
        assert recap_lineage["weights_rule"] == "last" and recap_lineage["gradient_steps"] > 0
        for method in BASELINES:
            lineage = baseline_lineage(root, TASK, iteration, method)
            assert lineage["gradient_steps"] == recap_lineage["gradient_steps"], method
            assert lineage["weights_rule"] == "last"
        # PPO's trust region is against the policy that collected the iteration's data.
        collector = pi_pre if iteration == 0 else root.iteration("policy", TASK, iteration - 1)
        ppo = baseline_lineage(root, TASK, iteration, "ppo")
        assert ppo["ppo_reference"] == str(collector.resolve())
        assert meta["ppo_reference_sha256"] == checkpoint_sha256(collector)
    # Iteration 1 trains on the demos and pi^0's rollouts: more than iteration 0 saw.
    assert set(baseline_lineage(root, TASK, 1, "awr")["episodes_per_iteration"]) == {"0", "1"}
    key = dg.AssetCheckKey(dg.AssetKey("baselines"), "baselines_share_pi_k_data")
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    assert record.event.dagster_event.event_specific_data.passed


def _outcome_as_stored(root: CheckpointLayout, iteration: int, method: str, **changes) -> BaselineOutcome:
    """A baseline's outcome rebuilt from its stored lineage, with ``changes`` to its training facts."""
    lineage = baseline_lineage(root, TASK, iteration, method)
    pi_pre = root.pretrained("policy")
    path = root.iteration("policy", TASK, iteration, method)
    facts = {
        "checkpoint": CheckpointRef(str(path), checkpoint_sha256(path)),
        "parent": CheckpointRef(str(pi_pre), checkpoint_sha256(pi_pre)),
        "versions": lineage["versions"],
        "episodes": lineage["episodes"],
        "steps": lineage["steps"],
        "episodes_per_iteration": {},
        "history": TrainingHistory(),
        "extra": {k: lineage[k] for k in ("gradient_steps", "weights_rule")},
    }
    training = TrainingResult(**{**facts, **changes})
    return BaselineOutcome(method, training, evaluation=None, advantages_mean=None)  # type: ignore[arg-type]


def test_the_audit_names_a_baseline_trained_on_other_data_budget_or_parent(study):
    recap, _, _, _ = study
    root = recap.checkpoint_layout()
    faithful = [_outcome_as_stored(root, 1, method) for method in BASELINES]
    assert audit_baselines(root, TASK, 1, faithful).same_data
    stored = baseline_lineage(root, TASK, 1, "awr")
    other_pi_k = root.iteration("policy", TASK, 0)
    unfaithful = [
        _outcome_as_stored(root, 1, "sft", steps=stored["steps"] + 1),
        _outcome_as_stored(root, 1, "awr", versions={**stored["versions"], "steps": 0}),
        _outcome_as_stored(
            root, 1, "ppo", parent=CheckpointRef(str(other_pi_k), checkpoint_sha256(other_pi_k))
        ),
    ]
    audit = audit_baselines(root, TASK, 1, unfaithful)
    assert not audit.same_data
    assert audit.mismatched == ["sft", "awr", "ppo"]


def test_a_baseline_refuses_an_iteration_without_a_value_function(study):
    recap, _, _, _ = study
    with pytest.raises(FileNotFoundError, match="V\\^k checkpoint missing"):
        train_baseline(recap.run_context(), TASK, ITERATIONS + 1, "awr")
    with pytest.raises(ValueError, match="unknown baseline 'dagger'"):
        train_baseline(recap.run_context(), TASK, 0, "dagger")


def _table_rows(markdown: str, section: str) -> list[list[str]]:
    body = markdown.split(f"## {section}")[1].split("\n## ")[0]
    headers = ("| task", "| study")
    lines = [line for line in body.splitlines() if line.startswith("| ") and not line.startswith(headers)]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def _pm(value, se, scale=1.0, digits=1) -> str:
    if value is None:
        return "n/a"
    return f"{value * scale:.{digits}f}" + ("" if se is None else f" ± {se * scale:.{digits}f}")


def test_every_number_in_the_report_comes_from_the_ledger(study):
    recap, _, report, root = study
    ledger = read_ledger(recap.ledger(), version=report.ledger_version).filter(task=TASK)
    text = (root / "reports" / report.directory.name / "report.md").read_text()
    assert text == report.markdown
    assert f"Delta version {report.ledger_version}" in text
    rows = _table_rows(text, "Every evaluation")
    assert len(rows) == ledger.height
    for study_name, task, method, iteration, episodes, success, duration, throughput in rows:
        assert study_name == "default"
        row = ledger.filter(method=method, iteration=int(iteration)).row(0, named=True)
        assert task == TASK and int(episodes) == row["episodes"]
        assert success == _pm(row["success_rate"], row["success_rate_se"], 100.0)
        assert duration == _pm(row["mean_duration_s"], row["mean_duration_s_se"], 1.0, 2)
        assert throughput == _pm(row["throughput_per_hour"], row["throughput_per_hour_se"])
    sft0 = ledger.filter(method="recap", iteration=0).row(0, named=True)
    final = ledger.filter(method="recap", iteration=ITERATIONS).row(0, named=True)
    targets = {r[1]: r[2] for r in _table_rows(text, "The paper's targets")}
    if sft0["throughput_per_hour"] > 0:
        ratio = final["throughput_per_hour"] / sft0["throughput_per_hour"]
        assert targets["throughput RECAP^K / SFT"] == f"{ratio:.2f}"
    for method in ("awr", "ppo"):
        other = ledger.filter(method=method, iteration=ITERATIONS).row(0, named=True)
        gap = final["throughput_per_hour"] - other["throughput_per_hour"]
        assert targets[f"throughput RECAP^K - {method.upper()}^K (per hour)"] == f"{gap:.2f}"
    claims = _table_rows(text, "The paper's targets")
    verdicts = {r[1]: r[6] for r in claims}
    assert {r[1]: r[7] for r in claims}.keys() == verdicts.keys()  # the t-interval's verdict beside it
    assert set(verdicts.values()) <= {"inconclusive", "undefined"}  # one replicate never meets a target
    if sft0["throughput_per_hour"] == 0:
        assert verdicts["throughput RECAP^K / SFT"] == "undefined"
    # every claim is also judged on the paired episodes, read from the outcomes table the report names
    assert f"at Delta version {report.outcomes_version}" in text
    paired = {r[1]: r[4] for r in claims}
    assert not any(cell.startswith("n/a") for cell in paired.values())
    final_outcomes = evaluation_outcomes(read_outcomes(recap.ledger()), final)
    other = evaluation_outcomes(
        read_outcomes(recap.ledger()), ledger.filter(method="awr", iteration=1).row(0, named=True)
    )
    gap = final_outcomes["success"].mean() - other["success"].mean()
    assert paired["success RECAP^K - AWR^K"].startswith(f"{gap:.2f} [")
    csv = pl.read_csv(report.directory / "ledger_rows.csv")
    assert csv.height == ledger.height


def test_every_evaluation_keeps_its_episodes_and_its_ledger_row_is_computed_from_them(study):
    recap, _, report, root = study
    ledger = read_ledger(recap.ledger(), version=report.ledger_version).filter(task=TASK)
    outcomes = read_outcomes(recap.ledger())
    assert outcomes.height == ledger["episodes"].sum()
    for row in ledger.iter_rows(named=True):
        episodes = evaluation_outcomes(outcomes, row)
        assert episodes.height == row["episodes"]
        assert episodes["seed"].to_list() == sorted(set(episodes["seed"].to_list()))
        again = summarize_outcomes(TASK, episodes)
        assert again.success_rate == pytest.approx(row["success_rate"])
        assert again.throughput_per_hour == pytest.approx(row["throughput_per_hour"])
        assert (episodes["policy_sha256"] == row["policy_sha256"]).all()
    # every policy ran on the same seeds, so any two pair up seed by seed
    assert (
        outcomes.group_by("method", "iteration").agg(pl.col("seed").sort()).get_column("seed").n_unique() == 1
    )
    # and the table is one SQL query away, beside the ledger
    store = recap.store()
    counted = run_query(
        store,
        "SELECT method, count(*) AS n FROM evaluation_outcomes GROUP BY method",
        ledger_root=root / "ledger",
    )
    per_method = dict(zip(counted["method"].to_list(), counted["n"].to_list(), strict=True))
    assert per_method == {m: 2 * ledger.filter(method=m)["episodes"][0] for m in per_method}
    assert set(per_method) == set(ledger["method"].to_list())


def test_a_bad_outcome_row_writes_nothing(study, tmp_path):
    recap, _, _, _ = study
    row = read_outcomes(recap.ledger()).row(0, named=True)
    ledger = str(tmp_path / "ledger" / "metrics")
    record_outcomes(ledger, [row])
    with pytest.raises(SchemaError, match="steps"):
        record_outcomes(
            ledger, [row | {"seed": row["seed"] + 1}, row | {"seed": row["seed"] + 2, "steps": 0}]
        )
    assert read_outcomes(ledger).height == 1


def test_the_report_follows_the_ledger_and_its_versions(study, tmp_path):
    recap, _, report, _ = study
    before = report.ledger_version
    row = read_ledger(recap.ledger(), version=before).filter(task=TASK, method="ppo", iteration=ITERATIONS)
    changed = row.row(0, named=True) | {
        "policy_sha256": "f" * 64,
        "policy_weights_sha256": "e" * 64,
        "success_rate": 0.123,
        "success_rate_se": 0.045,
        "evaluated_at": datetime.now(UTC),
    }
    version = record_evaluations(recap.ledger(), [changed])
    newer = write_report(recap.ledger(), [TASK], ITERATIONS, tmp_path / "newer")
    assert newer.ledger_version == version
    assert "| reach-v3 | ppo | 1 |" in newer.markdown and "12.3 ± 4.5" in newer.markdown
    # a row edited by hand has no episodes behind it: its claims fall back to the t-interval's verdict
    paired = {r[1]: r[4] for r in _table_rows(newer.markdown, "The paper's targets")}
    assert paired["throughput RECAP^K - PPO^K (per hour)"] == "n/a (no per-episode outcomes)"
    assert paired["throughput RECAP^K - AWR^K (per hour)"] != "n/a (no per-episode outcomes)"
    older = write_report(
        recap.ledger(), [TASK], ITERATIONS, tmp_path / "older", report.markdown.split("\n")[0][2:], before
    )
    assert older.markdown == report.markdown, "the same ledger version gives the same report"
    assert "12.3 ± 4.5" not in older.markdown

    # a newer evaluation on validation seeds (choosing settings) is never reported
    tuning = changed | {"split": "validation", "success_rate": 0.987, "evaluated_at": datetime.now(UTC)}
    record_evaluations(recap.ledger(), [tuning])
    after_tuning = write_report(recap.ledger(), [TASK], ITERATIONS, tmp_path / "after-tuning")
    assert "98.7" not in after_tuning.markdown and "12.3 ± 4.5" in after_tuning.markdown
    assert "test seeds (2,000,000 onwards)" in after_tuning.markdown


def test_the_report_is_written_with_plots_and_attached_to_the_run(study):
    _, instance, report, _ = study
    for name in ("final_throughput.png", f"{TASK}_success_rate.png", f"{TASK}_throughput_per_hour.png"):
        data = (report.directory / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({name})" in report.markdown
    meta = latest_metadata(instance, "experiment_report")
    assert meta["ledger_version"] == report.ledger_version
    assert re.search(r"## The paper's targets", meta["report"])
    assert meta["final_throughput"].startswith("![")
    assert Path(meta["report_path"]) == report.directory / "report.md"


def test_the_experiment_command_is_registered():
    result = CliRunner().invoke(app, ["experiment", "--help"])
    assert result.exit_code == 0
    for option in ("--preset", "--tasks", "--iterations", "--reports"):
        assert option in result.output


def test_report_only_rewrites_the_report_without_training(study, tmp_path):
    recap, instance, _, _ = study
    runs_before = len(instance.get_runs())
    ledger_before = DeltaTable(str(recap.ledger())).version()
    again = run_experiment(
        recap, instance, ITERATIONS, reports_root=tmp_path, log=lambda _: None, report_only=True
    )
    new_runs = instance.get_runs(limit=len(instance.get_runs()) - runs_before)
    assert [run.job_name for run in new_runs] == ["study_report"]
    assert again.ledger_version == ledger_before == DeltaTable(str(recap.ledger())).version()
    assert (again.directory / "report.md").read_text() == again.markdown
