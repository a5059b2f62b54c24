"""The simulated robot: tasks, teleoperation-like demos, batched rollouts, interventions, evaluation.

Everything speaks ``SimEnv``/``TaskSpec``, so Meta-World and any gymnasium env with a success flag and an
expert plug in the same way. No Dagster here.
"""

import os

# llvmpipe, OSMesa's CPU rasteriser, splits each frame over threads by default. For the small fast frames
# recorded cameras render that costs more than it gains (a 64 px Meta-World frame: ~120 frames/s without
# rasteriser threads against ~80 with them, measured by `recap bench collect`), and collection already
# runs one worker per core. It is read once, when OpenGL loads, so it is set here, before any simulator
# module can load it; presentation-quality videos render ~25% slower for it; a value in the environment
# wins.
os.environ.setdefault("LP_NUM_THREADS", "0")

from recap_core.sim.environment import SimEnv, TaskSpec
from recap_core.sim.evaluation import EvalResult, evaluate_policy, summarize
from recap_core.sim.gym_adapter import GymnasiumEnv
from recap_core.sim.metaworld_env import MetaWorldEnv
from recap_core.sim.operator import DEFAULT_OPERATOR, DemoConfig, collect_demos, run_demo
from recap_core.sim.point_mass import PointMassReach, make_point_mass_env, point_mass_expert
from recap_core.sim.pool import FinishedRollout
from recap_core.sim.rollouts import RolloutConfig, collect_rollouts, run_policy, to_episode
from recap_core.sim.supervisor import SupervisorConfig
from recap_core.sim.tasks import (
    EVAL_SPLITS,
    HELD_OUT_SEED_STARTS,
    TRAIN_SEED_START,
    eval_seeds,
    get_task,
    is_eval_seed,
    register_task,
    seed_split,
    task_names,
    train_seeds,
    with_max_steps,
)
from recap_core.sim.variants import STRICT_PUSH_TOLERANCE_M  # noqa: F401 - registers the study's variants

__all__ = [
    "DEFAULT_OPERATOR",
    "EVAL_SPLITS",
    "HELD_OUT_SEED_STARTS",
    "TRAIN_SEED_START",
    "DemoConfig",
    "EvalResult",
    "FinishedRollout",
    "GymnasiumEnv",
    "MetaWorldEnv",
    "PointMassReach",
    "RolloutConfig",
    "SimEnv",
    "SupervisorConfig",
    "TaskSpec",
    "collect_demos",
    "collect_rollouts",
    "eval_seeds",
    "evaluate_policy",
    "get_task",
    "is_eval_seed",
    "make_point_mass_env",
    "point_mass_expert",
    "register_task",
    "run_demo",
    "run_policy",
    "seed_split",
    "summarize",
    "task_names",
    "to_episode",
    "train_seeds",
    "with_max_steps",
]
