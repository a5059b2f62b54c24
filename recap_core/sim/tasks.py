"""Task registry: name -> prompt, episode limit and environment factory (seed splits: recap_core/seeds.py)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from functools import partial

from recap_core.seeds import (  # noqa: F401 - the seed splits, re-exported beside the tasks they seed
    EVAL_SPLITS,
    HELD_OUT_SEED_STARTS,
    SEED_RANGE_SIZE,
    TRAIN_SEED_START,
    eval_seeds,
    is_eval_seed,
    seed_split,
    train_seeds,
)
from recap_core.sim.environment import TaskSpec
from recap_core.sim.metaworld_catalog import load_catalog
from recap_core.sim.metaworld_env import MetaWorldEnv
from recap_core.sim.point_mass import make_hidden_goal_env, make_point_mass_env

# The tasks the presets and studies use keep the prompts and limits their results were measured with
# (Meta-World's experts finish them in ~40-140 steps at full speed, under ~2.5x that at the slowest
# operator speed; 300, 400 for peg insertion, leaves room for slow demos and recoveries). Every other
# MT50 task gets the prompt and limit derived once by recap_core/sim/metaworld_catalog.py.
_STUDIED_METAWORLD_TASKS: dict[str, tuple[str, int]] = {
    "push-v3": ("push the puck to the goal", 300),
    "pick-place-v3": ("pick up the puck and place it at the goal", 300),
    "peg-insert-side-v3": ("insert the peg into the hole from the side", 400),
    "reach-v3": ("reach the goal position with the gripper", 300),
    "drawer-open-v3": ("open the drawer", 300),
    "button-press-topdown-v3": ("press the button from the top", 300),
    "door-open-v3": ("open the door", 300),
    "window-open-v3": ("slide the window open", 300),
}
_METAWORLD_TASKS = {
    **{name: (entry["prompt"], entry["max_steps"]) for name, entry in load_catalog().items()},
    **_STUDIED_METAWORLD_TASKS,
}

_REGISTRY: dict[str, TaskSpec] = {
    name: TaskSpec(
        name=name,
        prompt=prompt,
        max_steps=max_steps,
        make_env=partial(MetaWorldEnv, name),
        motion_dims=(0, 1, 2),
        family="metaworld",
    )
    for name, (prompt, max_steps) in sorted(_METAWORLD_TASKS.items())
}
_REGISTRY["point-reach"] = TaskSpec(
    name="point-reach",
    prompt="move the point to the goal and stop there",
    max_steps=200,
    make_env=make_point_mass_env,
    motion_dims=(0, 1),
    family="gymnasium",
)
# The goal only in the "top" camera's frames, not in the observation (recap_core/sim/point_mass.py).
_REGISTRY["point-reach-hidden-goal"] = TaskSpec(
    name="point-reach-hidden-goal",
    prompt="move the point to the green goal and stop there",
    max_steps=200,
    make_env=make_hidden_goal_env,
    motion_dims=(0, 1),
    family="gymnasium",
)


def register_task(spec: TaskSpec, *, replace: bool = False) -> None:
    """Add a task (any ``SimEnv``) so collectors, the evaluator and the CLI can use it by name."""
    if spec.name in _REGISTRY and not replace:
        raise ValueError(f"task {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec


def get_task(name: str) -> TaskSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(unknown_task_message(name)) from None


def unknown_task_message(name: str, others: Iterable[str] = ()) -> str:
    """One short line: the nearest known names (simulated, and ``others`` such as stored fleet tasks),
    not all of them (`recap tasks` lists every simulated one)."""
    known = sorted(set(_REGISTRY) | set(others))
    nearest = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(nearest)}?" if nearest else ""
    return f"unknown task {name!r}{hint} (`recap tasks` lists the simulated tasks)"


def task_names() -> list[str]:
    return sorted(_REGISTRY)


def with_max_steps(spec: TaskSpec, max_steps: int | None) -> TaskSpec:
    """The same task with a different episode limit (None keeps the registered one)."""
    if max_steps is None:
        return spec
    return TaskSpec(spec.name, spec.prompt, max_steps, spec.make_env, spec.motion_dims, spec.family)
