"""Meta-World tasks behind ``SimEnv``: goal-observable v3 environments with their scripted experts.

Meta-World's ``reset`` ignores gymnasium's seed and by default draws the object/goal placement
("rand_vec") from numpy's global generator. This adapter switches the environment to its own seeded
generator (``seeded_rand_vec``) and re-seeds it before every reset: same seed, same initial state, in any
process, whatever else used numpy's global generator. (Freezing a pre-drawn placement instead is not an
option: some tasks, e.g. push-v3, reject placements whose goal is too close and redraw, which would loop
forever on a frozen vector.)
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from recap_core.sim.gym_adapter import GymnasiumEnv

# The scripted experts call metaworld.policies.policy.move(), which warns on every saturated step; the
# environment clips actions to [-1, 1] anyway, so the warning carries no information and costs time.
warnings.filterwarnings("ignore", message=r"Constant\(s\) may be too high")

_NO_PATH_LIMIT = 10**9  # collectors enforce the task's own max_steps; Meta-World's 500 would raise first


def _metaworld_expert(policy: Any) -> Any:
    def expert(_env: Any, obs: np.ndarray) -> np.ndarray:
        return policy.get_action(obs)

    return expert


UPSIDE_DOWN_CAMERAS = frozenset({"corner", "corner2", "corner3", "corner4"})
"""Meta-World cameras whose frames render upside down (the maintainers' advice: flip them vertically)."""


class MetaWorldEnv(GymnasiumEnv):
    """One Meta-World v3 task (e.g. ``push-v3``) with the goal in the observation (39-d), 4-d actions."""

    def __init__(self, env_name: str) -> None:
        from metaworld.env_dict import ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE
        from metaworld.policies import ENV_POLICY_MAP

        key = f"{env_name}-goal-observable"
        if key not in ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE or env_name not in ENV_POLICY_MAP:
            raise ValueError(f"unknown Meta-World v3 task {env_name!r} (needs an environment and an expert)")
        env = ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE[key](seed=0)
        env.max_path_length = _NO_PATH_LIMIT
        self.env_name = env_name
        super().__init__(env, _metaworld_expert(ENV_POLICY_MAP[env_name]()), control_period=float(env.dt))

    def render(self) -> np.ndarray:
        """The current frame, upright: Meta-World's four corner cameras are defined upside down (their
        frames come out with the table at the top), so their rows are flipped; no other camera is."""
        frame = super().render()
        return np.ascontiguousarray(frame[::-1]) if self.camera in UPSIDE_DOWN_CAMERAS else frame

    def _reset_raw(self, seed: int) -> np.ndarray:
        self.env._freeze_rand_vec = False
        self.env.seeded_rand_vec = True
        self.env.seed(int(seed))
        obs, _ = self.env.reset()
        return obs
