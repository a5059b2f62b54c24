"""Studies as namespaces: two studies in one RECAP_HOME never see each other's episodes, checkpoints or
ledger rows; re-evaluating the same policy replaces its row; replicates get their own training seeds."""

from __future__ import annotations

import dagster as dg
import pytest
from typer.testing import CliRunner

from assets.resources import RecapResource
from pipelines.cli.main import app
from pipelines.run import run_loop, summary_table
from recap_core.ledger import read_ledger
from recap_core.loop.evaluation import evaluate_iteration
from recap_core.loop.seeding import REPLICATE_SEED_STRIDE
from recap_core.outcomes import read_outcomes
from recap_core.presets import preset_file
from recap_core.study.experiment import ExperimentPlan

TASK = "reach-v3"


@pytest.fixture(scope="module")
def two_studies(tmp_path_factory):
    root = tmp_path_factory.mktemp("studies")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RECAP_HOME", str(root))
        env.delenv("RECAP_STORE_URI", raising=False)
        env.delenv("RECAP_LEDGER_URI", raising=False)
        first = RecapResource(preset="tiny", study="first")
        second = RecapResource(preset="tiny", study="second", replicate=1)
        (root / "dagster").mkdir()
        with dg.instance_for_test(temp_dir=str(root / "dagster")) as instance:
            run_loop(first, instance, iterations=1, log=lambda _: None)
            run_loop(second, instance, iterations=0, log=lambda _: None)
            yield root, first, second, instance


def test_each_study_reads_and_writes_only_its_own_namespace(two_studies):
    root, first, second, _ = two_studies
    assert first.store().uri != second.store().uri and first.checkpoints() != second.checkpoints()
    assert str(root / "lance" / "studies" / "second") == second.store().uri
    first_episodes, second_episodes = first.store().episodes().frame, second.store().episodes().frame
    assert set(first_episodes["iteration"].to_list()) == {0, 1}  # demos and iteration 1's rollouts
    assert set(second_episodes["iteration"].to_list()) == {0}  # nothing of the first study's rollouts
    # replicate 1 draws its demonstrations from its own block of training seeds
    first_demos = set(first_episodes.filter(kind="demo")["episode_id"].to_list())
    second_demos = set(second_episodes.filter(kind="demo")["episode_id"].to_list())
    assert len(second_demos) == 4 and not first_demos & second_demos  # ids derive from the seed
    assert (first.checkpoint_layout().iteration("policy", TASK, 1) / "config.json").is_file()
    assert not (second.checkpoint_layout().iteration("policy", TASK, 1) / "config.json").exists()
    ledger = read_ledger(first.ledger())
    assert sorted(ledger.filter(study="first", method="recap")["iteration"].to_list()) == [0, 1]
    assert ledger.filter(study="second", method="recap")["iteration"].to_list() == [0]
    assert summary_table(second.ledger(), [TASK], "recap", study="second").height == 1


def test_reevaluating_the_same_policy_leaves_one_ledger_row(two_studies):
    _, _, second, _ = two_studies
    before = read_ledger(second.ledger()).filter(study="second")
    for _ in range(2):
        evaluate_iteration(second.run_context("re-evaluation"), TASK, 0)
    after = read_ledger(second.ledger()).filter(study="second")
    assert after.height == before.height == 1
    assert after["run_id"].to_list() == ["re-evaluation"]


def test_runs_are_tagged_with_their_study_and_the_cli_reads_one_study(two_studies):
    root, _, _, instance = two_studies
    studies = {run.tags.get("recap/study") for run in instance.get_runs()}
    assert studies == {"first", "second"}
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RECAP_HOME", str(root))
        result = runner.invoke(app, ["query", "SELECT count(*) AS n FROM episodes", "--study", "second",
                                     "--format", "json"])  # fmt: skip
        assert result.exit_code == 0, result.output
        assert '"n":4' in result.output.replace(" ", "")  # the tiny preset's 4 demonstrations
        missing = runner.invoke(app, ["episodes", "--study", "nope"])
        assert missing.exit_code == 2 and "study 'nope' has no episode store" in missing.output


def test_replicates_are_studies_with_their_own_seed_blocks():
    plan = ExperimentPlan("tiny", (TASK,), 1, study="ablation", replicates=3)
    assert plan.studies == ["ablation-r0", "ablation-r1", "ablation-r2"]
    settings = [
        RecapResource(preset="tiny", study=s, replicate=r).settings() for r, s in enumerate(plan.studies)
    ]
    assert [s.demo_seed_start for s in settings] == [0, REPLICATE_SEED_STRIDE, 2 * REPLICATE_SEED_STRIDE]
    assert [s.seed for s in settings] == [0, 1, 2] and {s.eval_split for s in settings} == {"test"}
    with pytest.raises(ValueError, match="study name 'Bad Name'"):
        RecapResource(preset="tiny", study="Bad Name").settings()


def test_a_replicated_experiment_reports_intervals_over_its_replicates(tmp_path, monkeypatch):
    from pipelines.experiment import run_experiment

    monkeypatch.setenv("RECAP_HOME", str(tmp_path))
    monkeypatch.delenv("RECAP_STORE_URI", raising=False)
    monkeypatch.delenv("RECAP_LEDGER_URI", raising=False)
    (tmp_path / "dagster").mkdir()
    # the tiny preset as a study preset: two replicates, the final iteration on more test seeds
    tiny = preset_file("tiny").read_text()
    (tmp_path / "tiny-study.yaml").write_text(tiny + "replicates: 2\nfinal_eval_episodes: 5\n")
    recap = RecapResource(preset=str(tmp_path / "tiny-study.yaml"), study="rep")
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        # one replicate per sitting: the first report holds what exists, the second both
        first = run_experiment(recap, instance, 1, tmp_path / "reports", log=lambda _: None, only_replicate=1)
        assert set(first.rows["study"].to_list()) == {"rep-r1"}
        assert "Studies (one per replicate): rep-r1." in first.markdown
        with pytest.raises(ValueError, match="replicate must be in \\[0, 2\\)"):
            run_experiment(recap, instance, 1, tmp_path / "reports", log=lambda _: None, only_replicate=2)
        report = run_experiment(
            recap, instance, 1, tmp_path / "reports", log=lambda _: None, only_replicate=0
        )
    assert set(report.rows["study"].to_list()) == {"rep-r0", "rep-r1"}
    # the claims' policies (iteration K) on final_eval_episodes seeds, the others on eval_episodes
    episodes = set(zip(report.rows["iteration"].to_list(), report.rows["episodes"].to_list(), strict=True))
    assert episodes == {(0, 3), (1, 5)}
    outcomes = read_outcomes(str(tmp_path / "ledger" / "metrics"))
    assert outcomes.filter(iteration=1).height == 5 * report.rows.filter(iteration=1).height
    assert all(t["paired"] is not None and t["paired"].replicates == 2 for t in report.targets)
    assert "Studies (one per replicate): rep-r0, rep-r1." in report.markdown
    assert "success % (95% interval over replicates)" in report.markdown
    headline = report.markdown.split("## RECAP's final iteration")[1].split("\n## ")[0]
    recap_k1 = next(line for line in headline.splitlines() if "| RECAP k=1 |" in line)
    per_replicate = recap_k1.strip("|").split("|")[-1].strip()
    values = report.rows.filter(method="recap", iteration=1).sort("study")["success_rate"].to_list()
    assert per_replicate == ", ".join(f"{100 * v:.0f}" for v in values)
    assert all(t["interval"].replicates == 2 for t in report.targets)
    assert report.directory.name == "rep-tiny-study-k1-reach-v3-x2"
