"""Teleoperation-like demonstrations: the scripted expert playing a human operator, imperfectly.

Real demonstrations differ in speed and quality, and some fail; a dataset of perfect expert runs would
hide exactly the variation RECAP's advantages are meant to pick apart. Each episode draws its own
operator (speed factor, action noise, mistakes and recoveries) from a generator seeded by the episode's
seed, so every demo is reproducible on its own, in any process and in any batch.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from recap_core.episode import Episode, stable_episode_id
from recap_core.sim.cameras import FrameRecorder, encode_frames
from recap_core.sim.environment import SimEnv, TaskSpec

DEFAULT_OPERATOR = "operator:scripted-expert"


@dataclass(frozen=True)
class DemoConfig:
    """How imperfect the operator is. Ranges are (low, high), drawn uniformly once per episode."""

    speed_range: tuple[float, float] = (0.5, 1.0)  # scales the expert's motion commands
    noise_range: tuple[float, float] = (0.0, 0.2)  # std of Gaussian action noise
    mistake_rate: float = 0.01  # per-step chance of starting a mistake
    mistake_steps: tuple[int, int] = (5, 15)  # a mistake moves the wrong way for this many steps
    failure_share: float = 0.1  # share of episodes in which the operator gives up
    give_up_steps: tuple[int, int] = (5, 25)  # a failing operator gives up after this many steps
    seed: int = 0  # operator randomness, independent of the initial-state seed

    def __post_init__(self) -> None:
        for name in ("speed_range", "noise_range", "mistake_steps", "give_up_steps"):
            low, high = getattr(self, name)
            if low > high or low < 0:
                raise ValueError(
                    f"DemoConfig.{name} must be (low, high) with 0 <= low <= high, got {(low, high)}"
                )
        if not 0.0 <= self.failure_share <= 1.0:
            raise ValueError(f"DemoConfig.failure_share must be in [0, 1], got {self.failure_share}")
        if not 0.0 <= self.mistake_rate <= 1.0:
            raise ValueError(f"DemoConfig.mistake_rate must be in [0, 1], got {self.mistake_rate}")

    def digest(self) -> str:
        """Short fingerprint; part of the episode id, so other operator settings make other episodes."""
        return hashlib.sha256(repr(sorted(asdict(self).items())).encode()).hexdigest()[:10]

    def gives_up(self, seed: int) -> bool:
        """Whether the operator abandons the episode of ``seed``.

        Decided by the seed's position rather than a coin flip, so any contiguous run of seeds fails at the
        configured share up to one episode, however short the run.
        """
        return math.floor((seed + 1) * self.failure_share) > math.floor(seed * self.failure_share)


def run_demo(env: SimEnv, task: TaskSpec, seed: int, config: DemoConfig, operator: str) -> Episode:
    """One demonstration of ``task`` from the initial state of ``seed``."""
    rng = np.random.default_rng([config.seed, seed])
    speed = rng.uniform(*config.speed_range)
    noise = rng.uniform(*config.noise_range)
    give_up_at = int(rng.integers(config.give_up_steps[0], config.give_up_steps[1] + 1))
    gives_up = config.gives_up(seed)
    motion = np.asarray(task.motion_dims, dtype=np.int64)

    observations = np.empty((task.max_steps, env.obs_dim), dtype=np.float32)
    actions = np.empty((task.max_steps, env.action_dim), dtype=np.float32)
    recorder = FrameRecorder.for_env(env, task.max_steps)
    obs = env.reset(seed)
    success = False
    mistake_left = 0
    mistake_direction = np.zeros(len(motion), dtype=np.float32)
    wander = np.zeros(len(motion), dtype=np.float32)
    length = 0
    for t in range(task.max_steps):
        action = env.expert_action().astype(np.float32, copy=True)
        if gives_up and t >= give_up_at:
            # Abandoned: the operator fumbles around without purpose until the time runs out.
            wander = 0.8 * wander + 0.2 * rng.normal(0.0, 0.5, len(motion)).astype(np.float32)
            action[motion] = wander
        elif mistake_left > 0:
            action[motion] = mistake_direction
            mistake_left -= 1
        else:
            if rng.random() < config.mistake_rate:
                direction = rng.normal(size=len(motion))
                mistake_direction = (direction / (np.linalg.norm(direction) + 1e-9)).astype(np.float32)
                mistake_left = int(rng.integers(config.mistake_steps[0], config.mistake_steps[1] + 1))
            action[motion] *= speed
        if noise > 0:
            action += rng.normal(0.0, noise, env.action_dim).astype(np.float32)
        np.clip(action, env.action_low, env.action_high, out=action)
        observations[t] = obs
        if recorder is not None:
            recorder.record(t)
        actions[t] = action
        obs, success = env.step(action)
        length = t + 1
        if success:
            break
    return Episode(
        episode_id=stable_episode_id(task.name, "demo", seed, operator, config.digest()),
        task=task.name,
        prompt=task.prompt,
        kind="demo",
        success=success,
        observations=observations[:length].copy(),
        actions=actions[:length].copy(),
        is_correction=np.zeros(length, dtype=bool),
        iteration=0,
        collected_by=operator,
        robot=f"sim:{task.family}:{task.name}",
        source="recap_core.sim",
        images=encode_frames(recorder.frames(length)) if recorder is not None else None,
    )


_worker_env: SimEnv | None = None


def _init_worker(task: TaskSpec) -> None:
    global _worker_env
    _worker_env = task.make_env()


def _demo_in_worker(args: tuple[TaskSpec, int, DemoConfig, str]) -> Episode:
    assert _worker_env is not None, "demo worker used before its initializer ran"
    task, seed, config, operator = args
    return run_demo(_worker_env, task, seed, config, operator)


def collect_demos(
    task: TaskSpec,
    seeds: Sequence[int],
    config: DemoConfig | None = None,
    *,
    operator: str = DEFAULT_OPERATOR,
    workers: int = 0,
) -> Iterator[Episode]:
    """Demonstrations for ``seeds``, yielded in seed order as they finish.

    ``workers`` > 0 runs that many processes (each builds its environment once); 0 runs in-process, which
    is what tests and light environments want.
    """
    config = config or DemoConfig()
    if workers <= 0:
        env = task.make_env()
        for seed in seeds:
            yield run_demo(env, task, int(seed), config, operator)
        return
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_init_worker, initargs=(task,)) as pool:
        jobs = [(task, int(seed), config, operator) for seed in seeds]
        yield from pool.imap(_demo_in_worker, jobs, chunksize=1)
