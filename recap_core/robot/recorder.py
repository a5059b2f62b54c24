"""One episode on the robot: the policy's chunks executed open-loop, the operator's takeovers recorded as
corrections, and a success label at the end.

Each step stores the observation the action was chosen on (state and camera frames, PNG-encoded), the
action executed and whether the operator provided it. A chunk of H actions is executed for
``steps_per_chunk`` steps (all H by default) before the policy is asked again; a takeover discards the
rest of the chunk, so control handed back starts from a fresh plan of the current observation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from recap_core.lerobot_v3.episode import RecordedEpisode
from recap_core.lerobot_v3.frames import png_bytes
from recap_core.robot.interfaces import (
    CAMERA_KEY_PREFIX,
    PROMPT_KEY,
    STATE_KEY,
    EpisodeOutcome,
    Observation,
    Robot,
    RobotSetup,
    StepResult,
    SuccessLabelHook,
    TakeoverHook,
)
from recap_core.robot.policy import ChunkSource, collected_by, provenance

_CAMERA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")  # schemas.steps.CAMERA_PATTERN: a store column


@dataclass(frozen=True)
class RecordingSettings:
    task: str  # the recap task name the episodes are stored under
    prompt: str  # the instruction sent to the policy, LeRobot's task text
    steps_per_chunk: int | None = None  # None: execute the whole chunk
    max_steps: int = 1000

    def __post_init__(self) -> None:
        if self.steps_per_chunk is not None and self.steps_per_chunk < 1:
            raise ValueError(f"steps_per_chunk must be >= 1, got {self.steps_per_chunk}")
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")
        if not self.prompt.strip():
            raise ValueError("the prompt is empty: the policy needs the task's instruction")


class _Steps:
    """The episode's columns as they are recorded, checked to keep one shape."""

    def __init__(self) -> None:
        self.states: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []
        self.takeovers: list[bool] = []
        self.frames: dict[str, list[bytes]] | None = None

    def add(self, observation: Observation, action: np.ndarray, operator: bool) -> None:
        t = len(self.actions)
        if STATE_KEY not in observation:
            raise ValueError(f"step {t}: the observation has no {STATE_KEY!r} (keys: {sorted(observation)})")
        state = np.asarray(observation[STATE_KEY], dtype=np.float32).reshape(-1)
        cameras = _camera_frames(observation)
        if self.frames is None:
            self.frames = {name: [] for name in cameras}
        if set(cameras) != set(self.frames) or (self.states and len(state) != len(self.states[0])):
            raise ValueError(
                f"step {t}: state size {len(state)} and cameras {sorted(cameras)}, but step 0 had "
                f"{len(self.states[0])} and {sorted(self.frames)}"
            )
        if self.actions and len(action) != len(self.actions[0]):
            who = "operator's" if operator else "policy's"
            raise ValueError(
                f"step {t}: the {who} action has {len(action)} values, step 0's had {len(self.actions[0])}"
            )
        for name, frame in cameras.items():
            self.frames[name].append(png_bytes(frame))
        self.states.append(state)
        self.actions.append(action)
        self.takeovers.append(operator)


def _camera_frames(observation: Observation) -> dict[str, np.ndarray]:
    """``observation/<camera>`` entries that are frames (uint8, H x W x 3)."""
    frames = {}
    for key, value in observation.items():
        if key in (STATE_KEY, PROMPT_KEY) or not key.startswith(CAMERA_KEY_PREFIX):
            continue
        frame = np.asarray(value)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
            raise ValueError(
                f"{key!r}: a camera frame must be uint8 H x W x 3, got {frame.dtype} {frame.shape}"
            )
        name = key.removeprefix(CAMERA_KEY_PREFIX)
        if not _CAMERA_NAME.match(name):
            raise ValueError(f"{key!r}: a camera name must be letters, digits, '_' or '-'")
        frames[name] = frame
    return frames


def _unpack(result: Observation | StepResult) -> StepResult:
    return result if isinstance(result, StepResult) else StepResult(result)


def record_episode(
    robot: Robot,
    policy: ChunkSource,
    settings: RecordingSettings,
    *,
    takeover: TakeoverHook | None = None,
    label_success: SuccessLabelHook | None = None,
    success: bool | None = None,
) -> RecordedEpisode:
    """Run one episode and return it, labelled: ``success`` if given, else ``label_success``'s answer,
    else the robot's own signal; with none of them the episode cannot be labelled and is refused."""
    started = datetime.now(UTC)
    observation = robot.reset()
    steps = _Steps()
    chunk: np.ndarray | None = None
    position = limit = 0
    robot_success: bool | None = None
    ended_by_robot = False
    for t in range(settings.max_steps):
        operator_action = takeover(observation, t) if takeover is not None else None
        if operator_action is not None:
            action = np.asarray(operator_action, dtype=np.float32).reshape(-1)
            chunk = None  # handed back later, the policy plans afresh
        else:
            if chunk is None or position >= limit:
                chunk, position = policy.chunk(observation), 0
                limit = min(len(chunk), settings.steps_per_chunk or len(chunk))
            action = chunk[position]
            position += 1
        steps.add(observation, action, operator_action is not None)
        result = _unpack(robot.step(action))
        observation = result.observation
        if result.success is not None:
            robot_success = bool(robot_success) or bool(result.success)
        if result.done:
            ended_by_robot = True
            break
    outcome = EpisodeOutcome(
        len(steps.actions), sum(steps.takeovers), robot_success, ended_by_robot, observation
    )
    label = success
    if label is None and label_success is not None:
        label = label_success(outcome)
    if label is None:
        label = robot_success
    if label is None:
        raise ValueError(
            "the episode has no success label: the robot gives no success signal, so pass a label or a "
            "label_success hook"
        )
    return RecordedEpisode(
        state=np.stack(steps.states),
        action=np.stack(steps.actions),
        is_intervention=np.asarray(steps.takeovers, dtype=bool),
        images=steps.frames or {},
        prompt=settings.prompt,
        task=settings.task,
        kind="intervention" if any(steps.takeovers) else "autonomous",
        success=bool(label),
        collected_by=collected_by(policy.metadata),
        source=f"robot:{type(robot).__name__}",
        collected_at=started,
        policy=provenance(policy.metadata),
    )


def record_episodes(
    setup: RobotSetup,
    policy: ChunkSource,
    settings: RecordingSettings,
    episodes: int,
    *,
    label_success: SuccessLabelHook | None = None,
) -> Iterator[RecordedEpisode]:
    """``episodes`` episodes one after another with the setup's hooks (``label_success`` when the setup
    has none); a generator, so each one can be written before the next starts."""
    label = setup.label_success or label_success
    for _ in range(episodes):
        yield record_episode(setup.robot, policy, settings, takeover=setup.takeover, label_success=label)


def as_setup(built: object) -> RobotSetup:
    """A factory's result as a RobotSetup (a bare Robot gets the defaults)."""
    if isinstance(built, RobotSetup):
        return built
    if isinstance(built, Robot):
        return RobotSetup(built)
    raise TypeError(
        f"a robot factory must return a RobotSetup or a Robot (reset/step), got {type(built).__name__}"
    )
