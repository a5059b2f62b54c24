"""Paired comparisons of two policies: a hierarchical bootstrap over replicates and test seeds.

Every policy of a replicate is evaluated on the same test seeds, so two policies' episodes pair up seed
by seed: a seed that is hard for one is usually hard for the other, and a paired interval does not pay
for that variation twice. The Student-t interval over replicate means (verdicts.py) ignores the pairing
and, with three replicates, multiplies the spread by t(2) = 4.30.

The bootstrap mirrors how the data arose: a replicate is one draw of the whole study's training noise,
a seed one draw of the initial state. Each bootstrap draw resamples the replicates with replacement, then
within every drawn replicate resamples its paired seeds with replacement (a replicate drawn twice gets two
independent seed resamples), and evaluates the statistic on the pairs drawn, both policies of a pair
always together. The interval is the percentile interval of the draws, so it never leaves what the
statistic can be (a difference of rates stays in [-1, 1], a ratio at or above 0). Statistics combine
replicates as the study reports them: a difference is the mean over replicates of the per-replicate
difference; a ratio is the ratio of the means over replicates, which stays defined when one replicate's
denominator is 0 (a mean of per-replicate ratios would not).

With one replicate the interval covers evaluation noise only (training noise is unmeasured), so a claim
judged on it stays inconclusive. With R replicates, resampling them understates their variance by a
factor (R - 1) / R (0.8 for five); the seeds' level makes up part of it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from recap_core.study.verdicts import CONFIDENCE, Interval

Statistic = Literal["success_difference", "throughput_difference", "throughput_ratio", "failure_ratio"]
STATISTICS: tuple[Statistic, ...] = (
    "success_difference",
    "throughput_difference",
    "throughput_ratio",
    "failure_ratio",
)
DRAWS = 4000
BOOTSTRAP_SEED = 0  # the report is a pure function of its inputs: the draws are seeded


@dataclass(frozen=True)
class PairedReplicate:
    """One replicate's episodes of policies A and B on the seeds both were evaluated on, in seed order:
    success (0/1) and robot hours (steps x control period + reset) per episode."""

    success_a: np.ndarray
    hours_a: np.ndarray
    success_b: np.ndarray
    hours_b: np.ndarray

    def __post_init__(self) -> None:
        sizes = {len(self.success_a), len(self.hours_a), len(self.success_b), len(self.hours_b)}
        if len(sizes) != 1 or 0 in sizes:
            raise ValueError(f"a paired replicate needs as many episodes of A as of B (> 0), got {sizes}")

    @property
    def seeds(self) -> int:
        return len(self.success_a)


def paired_replicate(a: dict[int, tuple[bool, float]], b: dict[int, tuple[bool, float]]) -> PairedReplicate:
    """Pair two evaluations of one replicate by seed (seed -> (success, hours)); seeds only one of them
    ran are left out, so every pair compares the same initial state."""
    common = sorted(set(a) & set(b))
    if not common:
        raise ValueError(f"the two evaluations share no seed (A: {len(a)} seeds, B: {len(b)} seeds)")
    return PairedReplicate(
        np.array([float(a[s][0]) for s in common]),
        np.array([a[s][1] for s in common], dtype=np.float64),
        np.array([float(b[s][0]) for s in common]),
        np.array([b[s][1] for s in common], dtype=np.float64),
    )


def _combine(statistic: Statistic, sums: dict[str, np.ndarray], seeds: np.ndarray) -> np.ndarray:
    """The statistic from per-replicate sums over the drawn pairs; arrays (..., replicates)."""
    rate_a, rate_b = sums["success_a"] / seeds, sums["success_b"] / seeds
    with np.errstate(divide="ignore", invalid="ignore"):
        if statistic == "success_difference":
            return (rate_a - rate_b).mean(axis=-1)
        throughput_a = sums["success_a"] / sums["hours_a"]
        throughput_b = sums["success_b"] / sums["hours_b"]
        if statistic == "throughput_difference":
            return (throughput_a - throughput_b).mean(axis=-1)
        if statistic == "throughput_ratio":
            return _ratio(throughput_a.mean(axis=-1), throughput_b.mean(axis=-1))
        if statistic == "failure_ratio":
            return _ratio((1 - rate_a).mean(axis=-1), (1 - rate_b).mean(axis=-1))
    raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}")


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """x / 0 is +inf for x > 0 and NaN for 0 / 0 (no evidence either way)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(
            denominator > 0,
            numerator / np.where(denominator > 0, denominator, 1.0),
            np.where(numerator > 0, np.inf, np.nan),
        )


_COLUMNS = ("success_a", "hours_a", "success_b", "hours_b")


def paired_bootstrap(
    replicates: Sequence[PairedReplicate],
    statistic: Statistic,
    *,
    draws: int = DRAWS,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> Interval:
    """The statistic of A against B on the data, and its hierarchical-bootstrap percentile interval.

    ``Interval.mean`` holds the point estimate. It is NaN (undefined) when the data's own denominator is
    0; draws whose statistic is NaN (0 / 0) are left out of the percentiles.
    """
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}")
    if not replicates:
        return Interval(math.nan, math.nan, math.nan, 0)
    sizes = np.array([r.seeds for r in replicates], dtype=np.float64)
    point_sums = {c: np.array([getattr(r, c).sum() for r in replicates]) for c in _COLUMNS}
    point = float(_combine(statistic, point_sums, sizes))
    if not math.isfinite(point):
        return Interval(math.nan, math.nan, math.nan, len(replicates))
    rng = np.random.default_rng(seed)
    count = len(replicates)
    chosen = rng.integers(0, count, size=(draws, count))  # replicate of each slot of each draw
    drawn = {c: np.empty((draws, count)) for c in _COLUMNS}
    for slot in range(count):
        for index, replicate in enumerate(replicates):
            rows = chosen[:, slot] == index
            if not rows.any():
                continue
            weights = rng.multinomial(
                replicate.seeds, np.full(replicate.seeds, 1 / replicate.seeds), size=int(rows.sum())
            ).astype(np.float64)
            for column in _COLUMNS:
                drawn[column][rows, slot] = weights @ getattr(replicate, column)
    values = _combine(statistic, drawn, sizes[chosen])
    values = values[~np.isnan(values)]
    tail = (1 - confidence) / 2
    low, high = np.quantile(values, [tail, 1 - tail], method="inverted_cdf")
    return Interval(point, float(low), float(high), count)


def unpaired_bootstrap(
    replicates: Sequence[PairedReplicate],
    statistic: Statistic,
    *,
    draws: int = DRAWS,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> Interval:
    """The same bootstrap with A's and B's seeds resampled independently: what pairing is measured
    against (the report does not use it)."""
    rng = np.random.default_rng(seed)
    shuffled = []
    for replicate in replicates:
        order = rng.permutation(replicate.seeds)
        shuffled.append(
            PairedReplicate(
                replicate.success_a, replicate.hours_a, replicate.success_b[order], replicate.hours_b[order]
            )
        )
    return paired_bootstrap(shuffled, statistic, draws=draws, seed=seed, confidence=confidence)
