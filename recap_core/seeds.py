"""The seed splits: which initial states data comes from, which ones choices are made on, which are reported.

Initial states come from three disjoint seed ranges: training (demonstrations and rollouts), validation
(every evaluation a choice is made on: task selection, epochs, beta, threshold overrides) and test (only
the numbers a study reports). A policy is never evaluated on a state it trained on, and a reported
number never comes from a seed anything was tuned on. (No simulator import here: the ledger's schema
uses the split names.)
"""

from __future__ import annotations

TRAIN_SEED_START = 0
SEED_RANGE_SIZE = 1_000_000
# Evaluations before the test split existed used 1,000,000+: the seeds the presets were tuned on.
HELD_OUT_SEED_STARTS = {"validation": 1_000_000, "test": 2_000_000}
EVAL_SPLITS = tuple(HELD_OUT_SEED_STARTS)


def train_seeds(count: int, start: int = 0) -> list[int]:
    """``count`` initial-state seeds for data collection, offset ``start`` inside the training range."""
    return _seeds(TRAIN_SEED_START, count, start, "training")


def eval_seeds(count: int, start: int = 0, split: str = "validation") -> list[int]:
    """``count`` held-out initial-state seeds of ``split``: "validation" (anything a choice is made on,
    the default) or "test" (reported numbers only); neither overlaps ``train_seeds`` or the other."""
    if split not in HELD_OUT_SEED_STARTS:
        raise ValueError(f"evaluation split must be one of {EVAL_SPLITS}, got {split!r}")
    return _seeds(HELD_OUT_SEED_STARTS[split], count, start, f"{split} evaluation")


def _seeds(base: int, count: int, start: int, what: str) -> list[int]:
    if count < 0 or start < 0 or start + count > SEED_RANGE_SIZE:
        raise ValueError(f"{what} seeds: start={start}, count={count} leave the range [0, {SEED_RANGE_SIZE})")
    return list(range(base + start, base + start + count))


def seed_split(seed: int) -> str:
    """Which split an initial-state seed belongs to: "train", "validation", "test" or "none"."""
    if TRAIN_SEED_START <= seed < TRAIN_SEED_START + SEED_RANGE_SIZE:
        return "train"
    for split, start in HELD_OUT_SEED_STARTS.items():
        if start <= seed < start + SEED_RANGE_SIZE:
            return split
    return "none"


def is_eval_seed(seed: int) -> bool:
    return seed_split(seed) in HELD_OUT_SEED_STARTS
