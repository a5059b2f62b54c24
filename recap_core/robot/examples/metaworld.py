"""Meta-World as "the robot": an example adapter for ``python -m recap_core.robot.record``.

A real adapter wraps the team's robot driver the same way: ``reset`` moves it to a start pose and
returns the first observation, ``step`` sends one action and returns the next, with openpi's keys. The
scripted expert plays the operator, taking over on some episodes for a stretch and handing back; the
simulator knows success, so the label hook reads it (a real operator would press a key, docs/recorder.md).

    python -m recap_core.robot.record --robot recap_core.robot.examples.metaworld:station \\
        --robot-arg task=reach-v3 --robot-arg takeover_every=2 \\
        --policy recap_core.robot.examples.metaworld:expert_policy \\
        --task reach-v3 --prompt "reach the goal position with the gripper" \\
        --episodes 4 --batch-size 2 --drop-folder /tmp/drop --steps-per-chunk 5
"""

from __future__ import annotations

import warnings

import numpy as np

from recap_core.robot.interfaces import STATE_KEY, EpisodeOutcome, Observation, RobotSetup, StepResult


class MetaWorldRobot:
    """One Meta-World task behind the Robot protocol; every reset starts the next seed's initial state.
    ``camera`` (e.g. "corner") also sends that camera's frame as ``observation/<camera>``."""

    def __init__(
        self, task: str = "reach-v3", seed: int = 0, camera: str | None = None, image_size: int = 64
    ):
        from recap_core.sim.cameras import CameraSpec, with_cameras
        from recap_core.sim.tasks import get_task

        spec = get_task(task)
        if camera:
            spec = with_cameras(spec, CameraSpec((camera,), image_size))
        self.env = spec.make_env()
        self.camera = camera
        self.next_seed = seed
        self.fps = 1.0 / self.env.control_period

    def _observation(self, state: np.ndarray) -> dict:
        observation = {STATE_KEY: np.asarray(state, dtype=np.float32)}
        if self.camera:
            observation[f"observation/{self.camera}"] = self.env.frames()[self.camera]
        return observation

    def reset(self) -> Observation:
        state = self.env.reset(self.next_seed)
        self.next_seed += 1
        return self._observation(state)

    def step(self, action: np.ndarray) -> StepResult:
        state, success = self.env.step(np.clip(action, self.env.action_low, self.env.action_high))
        return StepResult(self._observation(state), done=success, success=success)

    def expert_action(self) -> np.ndarray:
        return np.asarray(self.env.expert_action(), dtype=np.float32)


class ScriptedOperator:
    """The takeover hook of an operator who watches every ``every``-th episode (the first, then every
    ``every`` after it) and drives from step ``start`` for ``length`` steps with the expert's actions,
    then hands back. ``every=0``: never takes over."""

    def __init__(self, robot: MetaWorldRobot, every: int = 2, start: int = 5, length: int = 10) -> None:
        self.robot, self.every, self.start, self.length = robot, every, start, length
        self.episode = -1

    def __call__(self, observation: Observation, t: int) -> np.ndarray | None:
        if t == 0:
            self.episode += 1  # t restarts with every episode
        watching = self.every > 0 and self.episode % self.every == 0
        if watching and self.start <= t < self.start + self.length:
            return self.robot.expert_action()
        return None


def simulator_label(outcome: EpisodeOutcome) -> bool:
    """The simulator's success signal as the label (a real station asks its operator)."""
    return bool(outcome.robot_success)


def station(
    task: str = "reach-v3",
    seed: str = "0",
    takeover_every: str = "2",
    takeover_start: str = "5",
    takeover_steps: str = "10",
    camera: str = "",
    image_size: str = "64",
    max_steps: str = "150",
) -> RobotSetup:
    """The ``--robot`` factory (``--robot-arg`` values arrive as strings)."""
    robot = MetaWorldRobot(task, int(seed), camera or None, int(image_size))
    operator = ScriptedOperator(robot, int(takeover_every), int(takeover_start), int(takeover_steps))
    return RobotSetup(
        robot,
        name=f"sim-{task}",
        fps=robot.fps,
        takeover=operator,
        label_success=simulator_label,
        max_steps=int(max_steps),
    )


class ExpertPolicy:
    """A stand-in for a served policy: the task's scripted expert, asked on the observed state, its action
    repeated for a chunk of ``horizon`` steps. Speaks openpi's ``infer`` and carries ``metadata``."""

    def __init__(self, task: str = "reach-v3", horizon: int = 10) -> None:
        from metaworld.policies import ENV_POLICY_MAP

        # the experts warn on every saturated step; the action is clipped anyway (as MetaWorldEnv does)
        warnings.filterwarnings("ignore", message=r"Constant\(s\) may be too high")
        self.expert = ENV_POLICY_MAP[task]()
        self.horizon = horizon
        self.metadata = {"policy_label": f"scripted-expert:{task}", "task": task, "horizon": horizon}

    def infer(self, observation: dict) -> dict:
        action = np.clip(self.expert.get_action(np.asarray(observation[STATE_KEY])), -1, 1)
        return {"actions": np.repeat(action[None].astype(np.float32), self.horizon, axis=0)}


def expert_policy(task: str = "reach-v3", horizon: str = "10") -> ExpertPolicy:
    """The ``--policy`` factory for a run without a policy server."""
    return ExpertPolicy(task, int(horizon))


class ZeroPolicy:
    """The smallest policy there is: zero actions (the robot stands still); ``get_server_metadata`` as
    openpi's client has it."""

    def __init__(self, action_dim: int = 4, horizon: int = 10) -> None:
        self.action_dim, self.horizon = action_dim, horizon

    def get_server_metadata(self) -> dict:
        return {"checkpoint_sha256": "0" * 64, "iteration": 0, "deployment_version": 1}

    def infer(self, observation: dict) -> dict:
        return {"actions": np.zeros((self.horizon, self.action_dim), dtype=np.float32)}


def zero_policy(action_dim: str = "4", horizon: str = "10") -> ZeroPolicy:
    return ZeroPolicy(int(action_dim), int(horizon))
