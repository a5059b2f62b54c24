"""Task variants: strict push for the failure-mode-removal study, proprioceptive Meta-World for pixels.

The paper shows RECAP removing one specific failure mode with little data. Here the failure mode is
imprecision: ``push-strict-v3`` is Meta-World's push with the goal tolerance cut from 5 cm to
``STRICT_PUSH_TOLERANCE_M``. A policy that shoves the puck "roughly there" succeeds on ``push-v3`` and fails
here, and the episode keeps running until the puck is close enough, so finishing precisely is what the
value function has to learn to reward. The same demonstrations (the scripted operator collects them
under the strict criterion) and the same rollouts budget are used: no extra demonstrations.

Importing this module registers the variants; ``recap_core.loop.settings`` imports it so every preset's
task names resolve in every process (worker processes unpickle ``make_env`` from this module too).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from recap_core.sim.environment import TaskSpec
from recap_core.sim.metaworld_env import MetaWorldEnv
from recap_core.sim.tasks import get_task, register_task

STRICT_PUSH_TOLERANCE_M = 0.02
"""Meta-World's push succeeds within 0.05 m of the goal; the strict variant asks for 0.02 m."""


class StrictPushEnv(MetaWorldEnv):
    """push-v3 whose success requires the puck's centre within ``tolerance`` metres of the goal."""

    def __init__(self, tolerance: float = STRICT_PUSH_TOLERANCE_M) -> None:
        if not 0.0 < tolerance <= 0.05:
            raise ValueError(f"push-strict tolerance must be in (0, 0.05] m, got {tolerance}")
        super().__init__("push-v3")
        self.tolerance = float(tolerance)

    def puck_to_goal(self) -> float:
        """Distance (m) between the puck and the goal, read from the simulator state."""
        return float(np.linalg.norm(self.env._get_pos_objects() - self.env._target_pos))

    def step(self, action: np.ndarray) -> tuple[np.ndarray, bool]:
        obs, _loose_success = super().step(action)
        return obs, self.puck_to_goal() <= self.tolerance


PROPRIOCEPTION = np.array([0, 1, 2, 3, 18, 19, 20, 21])
"""The robot's own state in Meta-World's 39-d observation: hand position and gripper opening, now and at
the previous step. Left out: the objects' poses (4:18, 22:36) and the goal (36:39), which a real robot
does not measure and must see in its cameras."""


class ProprioceptiveMetaWorldEnv(MetaWorldEnv):
    """A Meta-World task observed as a real robot would be: proprioception only (8-d); objects and goal
    only in the camera frames. The scripted operator still reads the full state (a human sees the scene)."""

    def __init__(self, env_name: str) -> None:
        super().__init__(env_name)
        self.obs_dim = len(PROPRIOCEPTION)

    def reset(self, seed: int) -> np.ndarray:
        return super().reset(seed)[PROPRIOCEPTION]

    def step(self, action: np.ndarray) -> tuple[np.ndarray, bool]:
        obs, success = super().step(action)
        return obs[PROPRIOCEPTION], success


def proprioceptive_name(task: str) -> str:
    """``reach-v3`` -> ``reach-proprio-v3``: the same task without privileged state in its observation."""
    stem, _, version = task.rpartition("-")
    return f"{stem}-proprio-{version}"


PROPRIOCEPTIVE_TASKS = ("reach-v3", "push-v3")
"""Meta-World tasks registered with a proprioceptive variant (for learning from cameras)."""


def _register_proprioceptive(task: str) -> None:
    base = get_task(task)
    spec = TaskSpec(
        name=proprioceptive_name(task),
        prompt=base.prompt,
        max_steps=base.max_steps,
        make_env=partial(ProprioceptiveMetaWorldEnv, task),
        motion_dims=base.motion_dims,
        family="metaworld",
    )
    register_task(spec, replace=True)


def _register() -> None:
    push = get_task("push-v3")
    spec = TaskSpec(
        name="push-strict-v3",
        prompt="push the puck exactly onto the goal",
        max_steps=push.max_steps,
        make_env=partial(StrictPushEnv, STRICT_PUSH_TOLERANCE_M),
        motion_dims=push.motion_dims,
        family="metaworld",
    )
    register_task(spec, replace=True)


STRICT_TASKS = ("push-strict-v3",)
_register()
for _task in PROPRIOCEPTIVE_TASKS:
    _register_proprioceptive(_task)
