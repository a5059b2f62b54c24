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
