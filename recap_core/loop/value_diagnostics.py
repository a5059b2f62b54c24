"""Does V^k see progress? Numbers and curves computed from the values the advantages stage just wrote.

They come back with the stage's result, so the pipeline records them without reading its own table back,
and any caller (the CLI, a notebook) gets the same diagnostics as the Dagster asset.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recap_core.steps import StepArrays

VALUE_RISES_MIN_SHARE = 0.8
"""A value function that sees progress is higher over the last quarter of most successful episodes than
over their first quarter; below this share of successes, it probably does not."""


@dataclass
class ValueDiagnostics:
    """``curves`` maps a label (success/failure and the episode id) to (V(o_t), normalised return) along
    the longest successful and the longest failed episode; ``share_rising`` is the share of successful
    episodes whose V rises from their first to their last quarter (NaN without successes)."""

    successful_episodes: int
    share_rising: float
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def value_rises(self) -> bool:
        return self.successful_episodes > 0 and self.share_rising >= VALUE_RISES_MIN_SHARE


def value_diagnostics(steps: StepArrays, values: np.ndarray, returns: np.ndarray) -> ValueDiagnostics:
    """Curves along two example episodes and the share of successes in which V rises."""
    order = np.lexsort((steps.t, steps.episode_index))
    episode_rows = np.split(order, np.flatnonzero(np.diff(steps.episode_index[order])) + 1)
    by_episode = {int(steps.episode_index[rows[0]]): rows for rows in episode_rows if len(rows)}
    success = steps.episodes["success"].to_numpy().astype(bool)
    rising = []
    for index, rows in by_episode.items():
        if success[index]:
            quarter = max(1, len(rows) // 4)
            rising.append(float(values[rows[-quarter:]].mean() > values[rows[:quarter]].mean()))
    curves = {}
    lengths = steps.episodes["length"].to_numpy()
    for label, wanted in (("success", True), ("failure", False)):
        candidates = [i for i in by_episode if success[i] == wanted]
        if candidates:
            longest = max(candidates, key=lambda i: (lengths[i], -i))
            episode_id = steps.episodes["episode_id"][longest]
            rows = by_episode[longest]
            curves[f"{label} ({episode_id[:8]})"] = (values[rows], returns[rows])
    share = float(np.mean(rising)) if rising else float("nan")
    return ValueDiagnostics(successful_episodes=len(rising), share_rising=share, curves=curves)


@dataclass(frozen=True)
class HeldOutValueCheck:
    """Does V^k memorise its own training episodes? On iteration k's new episodes (which V^k trained on
    and then labels), V^k's error against the returns next to the error of V^{k-1}, which never saw them,
    and how often the two value functions' advantages put a step on the same side of the target
    percentile (the indicator it would get). An in-sample error far below the held-out one, with
    agreement near chance, says V^k's advantages on its own data are mostly fitting noise.

    V^{k-1} also trained on less data and on an older policy's episodes, so its error is an upper bound
    on what a value function that did not see the episodes would make; cross-fitting (a fold model per
    held-out part of the same data) would measure it exactly."""

    new_episodes: int
    new_steps: int
    mae_in_sample: float  # |V^k - return| on the new steps
    mae_held_out: float  # |V^{k-1} - return| on the same steps
    indicator_agreement: float  # share of new steps on the same side of the target percentile
    chance_agreement: float  # the agreement two unrelated labellings at that percentile would have
    advantage_correlation: float  # Pearson, in-sample against held-out advantages on the new steps


def held_out_value_check(
    new: np.ndarray,
    values: np.ndarray,
    held_out_values: np.ndarray,
    returns: np.ndarray,
    advantages: np.ndarray,
    held_out_advantages: np.ndarray,
    positive_fraction: float,
    new_episodes: int,
) -> HeldOutValueCheck:
    """The check on the steps selected by the boolean mask ``new`` (arrays have one row per step)."""
    if not new.any():
        raise ValueError("the held-out value check needs at least one new step")
    inside, outside = advantages[new].astype(np.float64), held_out_advantages[new].astype(np.float64)
    positive_in = inside > np.quantile(inside, 1 - positive_fraction)
    positive_out = outside > np.quantile(outside, 1 - positive_fraction)
    share = float(positive_in.mean())
    correlation = (
        float(np.corrcoef(inside, outside)[0, 1]) if inside.std() > 0 and outside.std() > 0 else float("nan")
    )
    return HeldOutValueCheck(
        new_episodes=new_episodes,
        new_steps=int(new.sum()),
        mae_in_sample=float(np.abs(values[new] - returns[new]).mean()),
        mae_held_out=float(np.abs(held_out_values[new] - returns[new]).mean()),
        indicator_agreement=float((positive_in == positive_out).mean()),
        chance_agreement=share**2 + (1 - share) ** 2,
        advantage_correlation=correlation,
    )
