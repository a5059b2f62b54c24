"""A light second environment: a 2-D point mass that must reach a goal, with a PD expert.

It exists to prove that a plain gymnasium environment plugs into the same collectors as Meta-World, and
to make collector tests fast (a step is a few microseconds of numpy instead of a MuJoCo step).

``point-reach-hidden-goal`` is the same task with the goal left out of the observation: only the "top"
camera shows it (the green disc). A network must then read the image to know where to go, which is
what makes it a test of the image path: with the goal in the state vector, a policy that ignored its
camera would do just as well.
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym
import numpy as np

from recap_core.sim.gym_adapter import GymnasiumEnv


class PointMassReach(gym.Env):
    """Observation: position (2), velocity (2), goal (2). Action: force (2) in [-1, 1].

    Success when the mass is within ``success_radius`` of the goal and nearly at rest, so a policy has to
    brake, not just fly through. ``goal_in_observation`` False: the observation is position and velocity
    only, and the goal is visible only in the rendered frames.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"]}  # noqa: RUF012 - gymnasium's class attribute
    cameras = ("top",)  # one camera looking down on the plane; the arena [-1.5, 1.5]^2 fills the frame

    def __init__(
        self,
        dt: float = 0.05,
        success_radius: float = 0.05,
        damping: float = 0.9,
        goal_in_observation: bool = True,
    ) -> None:
        self.dt = dt
        self.goal_in_observation = goal_in_observation
        self.success_radius = success_radius
        self.damping = damping
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        size = 6 if goal_in_observation else 4
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(size,), dtype=np.float64)
        self._state = np.zeros(6)
        self.render_mode: str | None = None
        self.width = self.height = 64
        self.camera = "top"

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        pos = self.np_random.uniform(-1.0, 1.0, size=2)
        goal = self.np_random.uniform(-1.0, 1.0, size=2)
        self._state = np.concatenate([pos, np.zeros(2), goal])
        return self._observation(), {}

    def _observation(self) -> np.ndarray:
        return self._state.copy() if self.goal_in_observation else self._state[:4].copy()

    @property
    def goal(self) -> np.ndarray:
        return self._state[4:6].copy()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        force = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        s = self._state
        s[2:4] = self.damping * s[2:4] + force * self.dt * 1.5
        s[0:2] = np.clip(s[0:2] + s[2:4] * self.dt * 1.5, -1.5, 1.5)
        distance = float(np.hypot(*(s[0:2] - s[4:6])))
        success = distance < self.success_radius and float(np.hypot(*s[2:4])) < 0.1
        return self._observation(), -distance, False, False, {"success": success}

    def render(self) -> np.ndarray:
        """Top view, (height, width, 3) uint8: the goal as a green disc, the mass as a red one."""
        ys, xs = np.mgrid[0 : self.height, 0 : self.width]
        frame = np.full((self.height, self.width, 3), 235, dtype=np.uint8)
        for centre, colour, radius in (
            (self._state[4:6], (40, 170, 60), 0.12),
            (self._state[0:2], (200, 40, 40), 0.08),
        ):
            px = (centre[0] + 1.5) / 3.0 * (self.width - 1)
            py = (1.5 - centre[1]) / 3.0 * (self.height - 1)
            r = radius / 3.0 * self.width
            frame[(xs - px) ** 2 + (ys - py) ** 2 <= r * r] = colour
        return frame


def point_mass_expert(env: Any, obs: np.ndarray) -> np.ndarray:
    """PD controller on the goal: the scripted 'operator' for the point mass. It knows the goal even
    when the observation does not show it (the operator sees the scene)."""
    goal = env.goal if isinstance(env, PointMassReach) else obs[4:6]
    return np.clip(3.0 * (goal - obs[0:2]) - 1.5 * obs[2:4], -1.0, 1.0).astype(np.float32)


def make_point_mass_env(goal_in_observation: bool = True) -> GymnasiumEnv:
    env = PointMassReach(goal_in_observation=goal_in_observation)
    return GymnasiumEnv(env, point_mass_expert, control_period=env.dt)


make_hidden_goal_env = functools.partial(make_point_mass_env, goal_in_observation=False)
