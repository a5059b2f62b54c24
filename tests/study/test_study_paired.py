"""The paired hierarchical bootstrap on synthetic outcomes whose true answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recap_core.study.paired import (
    PairedReplicate,
    paired_bootstrap,
    paired_replicate,
    unpaired_bootstrap,
)

HOURS = 0.05  # every synthetic episode: 3 minutes of robot time


def _study(rng, replicates: int, seeds: int, rate_a: float, rate_b: float, spread: float = 0.05):
    """Seeds of varying difficulty shared by A and B (a hard seed is hard for both); each replicate
    shifts both policies' skill by its own training noise. True difference: rate_a - rate_b."""
    study = []
    for _ in range(replicates):
        difficulty = rng.random(seeds)
        shift_a, shift_b = rng.normal(0.0, spread, size=2)
        success_a = (difficulty < rate_a + shift_a).astype(float)
        success_b = (difficulty < rate_b + shift_b).astype(float)
        hours = np.full(seeds, HOURS)
        study.append(PairedReplicate(success_a, hours, success_b, hours.copy()))
    return study


def test_the_interval_holds_the_true_difference():
    study = _study(np.random.default_rng(1), replicates=5, seeds=100, rate_a=0.6, rate_b=0.4)
    paired = paired_bootstrap(study, "success_difference")
    assert paired.low < 0.2 < paired.high and paired.low > 0.0


def test_pairing_narrows_the_interval_when_seeds_vary_more_than_training():
    # per seed, the difference is 1 only on the 20% of seeds of middling difficulty: its variance is
    # 0.16 / n paired, against (0.24 + 0.24) / n when A's and B's seeds are drawn independently
    study = _study(np.random.default_rng(1), replicates=5, seeds=100, rate_a=0.6, rate_b=0.4, spread=0.0)
    paired = paired_bootstrap(study, "success_difference")
    unpaired = unpaired_bootstrap(study, "success_difference")
    assert paired.low < 0.2 < paired.high
    assert (paired.high - paired.low) < 0.7 * (unpaired.high - unpaired.low)


def test_95_percent_intervals_cover_the_true_difference_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    covered = 0
    trials = 200
    for trial in range(trials):
        study = _study(rng, replicates=5, seeds=40, rate_a=0.55, rate_b=0.35)
        # the true mean difference over replicates of this model is 0.2 (shifts have mean 0)
        interval = paired_bootstrap(study, "success_difference", draws=1000, seed=trial)
        covered += interval.low <= 0.2 <= interval.high
    assert 0.85 <= covered / trials <= 0.995


def test_no_difference_gives_an_interval_around_zero():
    study = _study(np.random.default_rng(3), replicates=5, seeds=100, rate_a=0.5, rate_b=0.5, spread=0.0)
    interval = paired_bootstrap(study, "success_difference")
    assert interval.low <= 0.0 <= interval.high


def test_throughput_ratio_and_failure_ratio_have_their_known_values():
    # A succeeds on 60 of 100 seeds, B on 30 of them (a subset): throughput 2x, failures 0.4 / 0.7
    success_a = np.r_[np.ones(60), np.zeros(40)]
    success_b = np.r_[np.ones(30), np.zeros(70)]
    hours = np.full(100, HOURS)
    study = [PairedReplicate(success_a, hours, success_b, hours)] * 3
    throughput = paired_bootstrap(study, "throughput_ratio")
    assert throughput.mean == pytest.approx(2.0) and throughput.low < 2.0 < throughput.high
    failure = paired_bootstrap(study, "failure_ratio")
    assert failure.mean == pytest.approx(0.4 / 0.7) and failure.low < 0.4 / 0.7 < failure.high
    gap = paired_bootstrap(study, "throughput_difference")
    assert gap.mean == pytest.approx(0.6 / HOURS - 0.3 / HOURS)


def test_intervals_stay_within_what_the_statistic_can_be():
    # a 1-episode-apart comparison on few seeds: a t-interval would run past the bounds
    success_a = np.array([1.0, 1.0, 1.0, 0.0])
    success_b = np.array([0.0, 0.0, 1.0, 0.0])
    hours = np.full(4, HOURS)
    study = [PairedReplicate(success_a, hours, success_b, hours)] * 2
    difference = paired_bootstrap(study, "success_difference")
    assert -1.0 <= difference.low <= difference.high <= 1.0
    ratio = paired_bootstrap(study, "failure_ratio")
    assert ratio.low >= 0.0


def test_a_zero_denominator_is_undefined_and_some_zero_draws_are_infinite():
    never = np.zeros(10)
    hours = np.full(10, HOURS)
    some = np.r_[1.0, np.zeros(9)]
    undefined = paired_bootstrap([PairedReplicate(some, hours, never, hours)], "throughput_ratio")
    assert math.isnan(undefined.mean) and not undefined.defined
    rare = paired_bootstrap([PairedReplicate(some * 0 + 1, hours, some, hours)] * 2, "throughput_ratio")
    assert rare.mean == pytest.approx(10.0) and math.isinf(rare.high)  # B's one success is often redrawn away


def test_the_draws_are_seeded_so_a_report_is_reproducible():
    study = _study(np.random.default_rng(5), replicates=3, seeds=30, rate_a=0.6, rate_b=0.3)
    assert paired_bootstrap(study, "success_difference") == paired_bootstrap(study, "success_difference")


def test_pairing_is_by_seed_and_unshared_seeds_are_left_out():
    a = {10: (True, 0.1), 11: (False, 0.2), 12: (True, 0.1)}
    b = {12: (False, 0.2), 10: (True, 0.1), 99: (True, 0.1)}
    pairs = paired_replicate(a, b)
    assert pairs.seeds == 2
    assert pairs.success_a.tolist() == [1.0, 1.0] and pairs.success_b.tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="share no seed"):
        paired_replicate({1: (True, 0.1)}, {2: (True, 0.1)})
    with pytest.raises(ValueError, match="statistic must be one of"):
        paired_bootstrap([pairs], "median")  # type: ignore[arg-type]


CONTROL_PERIOD = 0.05
RESET = 5.0


def _evaluate(
    ledger: str, study: str, iteration: int, method: str, successes: np.ndarray, split: str = "test"
) -> None:
    """Record one evaluation the way the pipeline does: its episodes, then the row computed from them."""
    from datetime import UTC, datetime

    from recap_core.ledger import record_evaluations
    from recap_core.outcomes import EpisodeOutcome, outcome_rows, record_outcomes, summarize_outcomes

    seeds = (2_000_000 if split == "test" else 1_000_000) + np.arange(len(successes))
    evaluation = {
        "study": study,
        "task": "push-v3",
        "iteration": iteration,
        "method": method,
        "policy_sha256": f"{study}-{method}-{iteration}",
        "policy_weights_sha256": f"w-{study}-{method}-{iteration}",
        "beta": 2.0,
        "split": split,
        "run_id": "run",
        "evaluated_at": datetime.now(UTC),
    }
    episodes = [
        EpisodeOutcome(int(s), bool(ok), 60 if ok else 200) for s, ok in zip(seeds, successes, strict=True)
    ]
    rows = outcome_rows(evaluation, episodes, control_period_s=CONTROL_PERIOD, reset_s=RESET)
    record_outcomes(ledger, rows)
    import polars as pl

    result = summarize_outcomes("push-v3", pl.DataFrame(rows))
    record_evaluations(
        ledger,
        [
            evaluation
            | {
                "policy_checkpoint": "",
                "lookahead": 50,
                "episodes": result.episodes,
                "success_rate": result.success_rate,
                "success_rate_se": result.success_rate_se,
                "mean_duration_s": result.mean_success_duration_s,
                "mean_duration_s_se": result.mean_success_duration_se,
                "throughput_per_hour": result.throughput_per_hour,
                "throughput_per_hour_se": result.throughput_se,
                "eval_seeds": f"{seeds[0]}-{seeds[-1]}",
            }
        ],
    )


def test_the_report_judges_a_claim_on_its_paired_episodes_where_the_t_interval_cannot(tmp_path):
    """Three replicates of very different skill (training noise), in each of which RECAP^1 beats AWR^1 on
    the same 100 seeds by 6 to 18 points: the t-interval over the replicates' differences (t(2) = 4.30)
    spans 0, the paired bootstrap does not."""
    from recap_core.study.report import write_report

    ledger = str(tmp_path / "ledger" / "metrics")
    difficulty = np.random.default_rng(0).random(100)
    for replicate, (skill, lead) in enumerate(((0.2, 0.12), (0.5, 0.06), (0.7, 0.18))):
        study = f"s-r{replicate}"
        _evaluate(ledger, study, 0, "recap", difficulty < skill - 0.1)
        _evaluate(ledger, study, 1, "recap", difficulty < skill + lead)
        _evaluate(ledger, study, 1, "awr", difficulty < skill)
    report = write_report(ledger, ["push-v3"], 1, tmp_path / "report", studies=["s-r0", "s-r1", "s-r2"])
    claims = {t["claim"]: t for t in report.targets}
    success = claims["success RECAP^K - AWR^K"]
    assert success["t_verdict"] == "inconclusive" and success["interval"].low < 0
    assert success["verdict"] == "met" and success["paired"].low > 0
    assert success["paired"].mean == pytest.approx(success["value"])  # both: the mean difference
    assert claims["throughput RECAP^K - AWR^K (per hour)"]["verdict"] == "met"
    for claim in (c for name, c in claims.items() if name.startswith("success")):
        assert -1.0 <= claim["interval"].low <= claim["interval"].high <= 1.0
    assert "| push-v3 (hardest) | success RECAP^K - AWR^K |" in report.markdown
    # the headline's t-intervals of success rates stay within 0-100%
    for line in report.markdown.split("## The paper's targets")[0].splitlines():
        if line.startswith("| push-v3 |") and "[" in line:
            low, high = (float(x) for x in line.split("|")[3].split("[")[1].rstrip("] ").split(","))
            assert 0.0 <= low <= high <= 100.0


def test_a_study_on_validation_seeds_reports_them_as_such_and_never_as_test_results(tmp_path):
    from recap_core.study.report import write_report

    ledger = str(tmp_path / "ledger" / "metrics")
    difficulty = np.random.default_rng(1).random(20)
    _evaluate(ledger, "v", 0, "recap", difficulty < 0.3, split="validation")
    _evaluate(ledger, "v", 1, "recap", difficulty < 0.5, split="validation")
    with pytest.raises(ValueError, match="no test-seed evaluations"):
        write_report(ledger, ["push-v3"], 1, tmp_path / "test-report", studies=["v"])
    report = write_report(ledger, ["push-v3"], 1, tmp_path / "report", studies=["v"], split="validation")
    assert "comes from validation seeds (1,000,000 onwards)" in report.markdown
    assert "not a reported result" in report.markdown
    assert set(report.rows["split"].to_list()) == {"validation"}
