"""Errors the store raises on bad input: each names the episode, the column and the offending value."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One reason a batch was refused."""

    episode_id: str
    column: str
    value: object
    rule: str

    def __str__(self) -> str:
        return f"episode {self.episode_id!r}: column {self.column!r} = {self.value!r}: {self.rule}"


class EpisodeValidationError(ValueError):
    """A batch of episodes was refused; nothing was written (table versions unchanged)."""

    def __init__(self, problems: list[Problem], shown: int = 10) -> None:
        self.problems = problems
        lines = [str(p) for p in problems[:shown]]
        if len(problems) > shown:
            lines.append(f"... and {len(problems) - shown} more")
        super().__init__(f"{len(problems)} problem(s), nothing written:\n  " + "\n  ".join(lines))
