"""The one interface every simulated (or scripted) robot implements, and the task description around it.

Collectors, the supervisor and the evaluator only talk to ``SimEnv`` and ``TaskSpec``; that is what lets a
Meta-World task and any other gymnasium environment with a success flag and an expert share one code path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class SimEnv(Protocol):
    """A resettable environment with a success signal and a scripted expert (the stand-in human operator).

    ``reset(seed)`` must put the environment in the same initial state for the same seed, because seeds are
    how training and evaluation initial states are kept apart and how episodes get stable ids.
    """

    obs_dim: int
    action_dim: int
    control_period: float  # seconds of robot time per step
    action_low: np.ndarray
    action_high: np.ndarray

    def reset(self, seed: int) -> np.ndarray:
        """Start a new episode from the initial state of ``seed``; returns the float32 observation."""
        ...

    def step(self, action: np.ndarray) -> tuple[np.ndarray, bool]:
        """Apply one action; returns (float32 observation, success)."""
        ...

    def expert_action(self) -> np.ndarray:
        """The scripted expert's action for the current state."""
        ...


@dataclass(frozen=True)
class TaskSpec:
    """A task as the rest of the project sees it.

    ``max_steps`` is also the horizon the value function normalises returns by, so it is part of the task,
    not of a collector. ``motion_dims`` are the action dimensions that move the robot; slowing an operator
    scales only those (a gripper command is not "slower" when halved, it is a different command).
    ``make_env`` must be picklable (a module-level function or ``functools.partial``) so worker processes
    can build their own environments.
    """

    name: str
    prompt: str
    max_steps: int
    make_env: Callable[[], SimEnv]
    motion_dims: tuple[int, ...]
    family: str = "gymnasium"

    def __post_init__(self) -> None:
        if self.max_steps <= 0:
            raise ValueError(f"task {self.name!r}: max_steps must be positive, got {self.max_steps}")
        if not self.prompt.strip():
            raise ValueError(f"task {self.name!r}: prompt must not be empty")
