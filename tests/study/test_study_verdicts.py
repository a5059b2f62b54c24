"""The report's interval arithmetic and verdicts on hand-computed numbers."""

from __future__ import annotations

import math

import polars as pl
import pytest

from recap_core.study.report import _targets
from recap_core.study.verdicts import Interval, ratios, t_interval, verdict

T_975_2 = 4.302652729911275  # Student t quantile, 2 degrees of freedom (3 replicates)


def test_t_interval_over_three_replicates():
    interval = t_interval([1.0, 2.0, 3.0])  # mean 2, sample sd 1
    half = T_975_2 / math.sqrt(3)
    assert interval.mean == pytest.approx(2.0)
    assert (interval.low, interval.high) == pytest.approx((2.0 - half, 2.0 + half))
    assert interval.replicates == 3 and interval.defined


def test_one_replicate_has_no_interval_and_is_inconclusive():
    single = t_interval([5.0])
    assert single.mean == 5.0 and not single.defined
    assert verdict(single, ">=", 2.0) == "inconclusive"  # 5 >= 2 as a point, but training noise is unknown


@pytest.mark.parametrize(
    ("values", "direction", "target", "expected"),
    [
        ([2.5, 2.6, 2.7], ">=", 2.0, "met"),  # [2.352, 2.848] clears 2
        ([1.0, 1.1, 1.2], ">=", 2.0, "missed"),  # [0.852, 1.348] entirely below
        ([1.0, 2.0, 3.0], ">=", 2.0, "inconclusive"),  # [-0.484, 4.484] straddles 2
        ([0.3, 0.35, 0.4], "<=", 0.5, "met"),  # [0.226, 0.474] entirely at or below 0.5
        ([0.8, 0.9, 1.0], "<=", 0.5, "missed"),  # [0.652, 1.148] entirely above
        ([0.0, 0.0, 0.0], ">", 0.0, "missed"),  # exactly 0 is not above 0
        ([12.0, -3.0, 20.0], ">", 0.0, "inconclusive"),  # "+12/h over AWR" inside its noise
    ],
)
def test_verdicts(values, direction, target, expected):
    assert verdict(t_interval(values), direction, target) == expected


def test_a_zero_denominator_makes_the_ratio_undefined_never_met():
    per_replicate = ratios([100.0, 120.0, 90.0], [50.0, 0.0, 45.0])
    assert per_replicate[0] == 2.0 and math.isnan(per_replicate[1])
    interval = t_interval(per_replicate)
    assert math.isnan(interval.mean) and interval.text() == "undefined"
    assert verdict(interval, ">=", 2.0) == "undefined"
    assert verdict(Interval(math.nan, math.nan, math.nan, 0), "<=", 0.5) == "undefined"


def _replicate(sft_throughput: float, recap_throughput: float, awr_throughput: float) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "task": ["push"] * 3,
            "iteration": [0, 2, 2],
            "method": ["recap", "recap", "awr"],
            "success_rate": [0.4, 0.76, 0.6],
            "throughput_per_hour": [sft_throughput, recap_throughput, awr_throughput],
        }
    )


def test_the_report_judges_each_claim_over_replicates():
    replicates = [_replicate(100, 250, 200), _replicate(100, 260, 190), _replicate(100, 240, 230)]
    claims = {t["claim"]: t for t in _targets(replicates, ["push"], final=2)}
    throughput = claims["throughput RECAP^K / SFT"]
    assert throughput["value"] == pytest.approx(2.5)
    half = T_975_2 * 0.1 / math.sqrt(3)  # ratios 2.5, 2.6, 2.4: sd 0.1
    assert (throughput["interval"].low, throughput["interval"].high) == pytest.approx(
        (2.5 - half, 2.5 + half)
    )
    assert throughput["verdict"] == "met"
    failure = claims["failure rate RECAP^K / SFT"]  # 0.24 / 0.6 = 0.4 in every replicate: sd 0
    assert failure["value"] == pytest.approx(0.4) and failure["verdict"] == "met"
    gap = claims["throughput RECAP^K - AWR^K (per hour)"]  # 50, 70, 10
    assert gap["value"] == pytest.approx(130 / 3) and gap["verdict"] == "inconclusive"
    zero_sft = _targets([_replicate(0, 250, 200), *replicates[1:]], ["push"], final=2)
    assert zero_sft[0]["verdict"] == "undefined"
