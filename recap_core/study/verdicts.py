"""Whether a paper target was reached, judged on an interval over independent replicates, not on a point.

Training noise is larger than evaluation noise (a baseline went 50% -> 53% -> 20% on one task across
seeds), so a claim is judged over replicates of the whole study: the mean of the replicates' values
with a 95% Student-t interval. A target is "met" only when the whole interval clears it, "missed" when
the whole interval is on the wrong side, and "inconclusive" otherwise (always, with one replicate: no
interval exists). A ratio whose denominator is zero in any replicate is "undefined", never met.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from scipy import stats

Direction = Literal[">=", "<=", ">"]
Verdict = Literal["met", "missed", "inconclusive", "undefined"]
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """Mean over replicates and its two-sided t interval; bounds are NaN when not defined."""

    mean: float
    low: float
    high: float
    replicates: int

    @property
    def defined(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))

    def clipped(self, low: float | None = None, high: float | None = None) -> Interval:
        """The interval within what the quantity can be (a rate in [0, 1], a ratio at or above 0): a
        t-interval is symmetric and runs past a bound the data cannot cross."""
        if not self.defined:
            return self
        lower = self.low if low is None else max(self.low, low)
        upper = self.high if high is None else min(self.high, high)
        return Interval(self.mean, lower, upper, self.replicates)

    def text(self, digits: int = 2) -> str:
        if math.isnan(self.mean):
            return "undefined"
        if not self.defined:
            return f"{self.mean:.{digits}f} (one replicate: no interval)"
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """mean ± t_{(1+c)/2, n-1} · s / sqrt(n) over the replicates' values."""
    n = len(values)
    if n == 0 or any(math.isnan(v) for v in values):
        return Interval(math.nan, math.nan, math.nan, n)
    mean = sum(values) / n
    if n == 1:
        return Interval(mean, math.nan, math.nan, 1)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Per-replicate ratios; NaN for a replicate whose denominator is zero (then the claim is undefined)."""
    if len(numerators) != len(denominators):
        raise ValueError(f"{len(numerators)} numerators but {len(denominators)} denominators")
    return [n / d if d != 0 else math.nan for n, d in zip(numerators, denominators, strict=True)]


def verdict(interval: Interval, direction: Direction, target: float) -> Verdict:
    """Met if the whole interval satisfies ``value <direction> target``; missed if none of it does."""
    if math.isnan(interval.mean):
        return "undefined"
    if not interval.defined:
        return "inconclusive"
    if direction == ">=":
        satisfied, violated = interval.low >= target, interval.high < target
    elif direction == "<=":
        satisfied, violated = interval.high <= target, interval.low > target
    elif direction == ">":
        satisfied, violated = interval.low > target, interval.high <= target
    else:
        raise ValueError(f"direction must be one of '>=', '<=', '>', got {direction!r}")
    if satisfied:
        return "met"
    return "missed" if violated else "inconclusive"
