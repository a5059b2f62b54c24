"""What the recorder needs from the team's code: a robot, a policy, and the operator's two hooks.

Observations follow openpi's keys (what a policy server reads, ``recap_core.serving.observations``):
``observation/state`` (a float vector), ``observation/<camera>`` (uint8 H x W x 3 frames); the recorder
adds ``prompt``. Every protocol is structural: any object with these methods fits, nothing to inherit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

STATE_KEY = "observation/state"
CAMERA_KEY_PREFIX = "observation/"
PROMPT_KEY = "prompt"

Observation = Mapping[str, Any]


@dataclass(frozen=True)
class StepResult:
    """What a robot may return from ``step`` when it knows more than the next observation: ``done`` ends
    the episode (the task is complete, or the robot must stop), ``success`` is its own success signal
    (None: it cannot tell)."""

    observation: Observation
    done: bool = False
    success: bool | None = None


@runtime_checkable
class Robot(Protocol):
    def reset(self) -> Observation:
        """Bring the robot to the start of a new episode; returns the first observation."""
        ...

    def step(self, action: np.ndarray) -> Observation | StepResult:
        """Execute one action (one control period); returns the next observation, or a StepResult."""
        ...


@runtime_checkable
class Policy(Protocol):
    """openpi's client protocol (``WebsocketClientPolicy``, ``recap_core.serving.client.PolicyClient``):
    ``infer`` returns {"actions": (H, action_dim)}. Its metadata, from ``get_server_metadata()`` or a
    ``metadata`` attribute, names the checkpoint that drove the robot."""

    def infer(self, observation: dict) -> dict: ...


class TakeoverHook(Protocol):
    def __call__(self, observation: Observation, t: int) -> np.ndarray | None:
        """Called before every step ``t``: the operator's action while they have taken over (that step is
        stored as a correction), or None while the policy is in control (handing back is returning None
        again; the policy then plans a new chunk from the current observation)."""
        ...


@dataclass(frozen=True)
class EpisodeOutcome:
    """What the success-label hook is shown when an episode ends."""

    steps: int
    takeover_steps: int
    robot_success: bool | None  # the robot's own signal, None if it gave none
    ended_by_robot: bool  # the robot said done; False: the step limit ended it
    last_observation: Observation


class SuccessLabelHook(Protocol):
    def __call__(self, outcome: EpisodeOutcome) -> bool:
        """The episode's success label (an operator's key press, a scale, a vision check, ...)."""
        ...


@dataclass
class RobotSetup:
    """What a ``--robot package.module:factory`` returns (a bare Robot is taken as ``RobotSetup(robot)``):
    the robot, its name (dataset names and LeRobot's robot_type), its control rate, and the operator's
    hooks; without ``takeover`` the policy is never interrupted, without ``label_success`` the label is
    asked on the terminal (or taken from the robot's signal, ``--success-label robot``)."""

    robot: Robot
    name: str = "robot"
    fps: float = 10.0
    takeover: TakeoverHook | None = None
    label_success: SuccessLabelHook | None = None
    max_steps: int = 1000
    close: Callable[[], None] | None = None  # called once recording ends (release the hardware)
