"""Autonomous (and supervised) rollouts of a ``ChunkPolicy`` over many environments at once.

One policy call per chunk for all active environments; each environment executes the first
``execute_steps`` actions of its chunk before the policy is asked again (receding-horizon chunk
execution, as on the real robot). A policy that reads cameras (``policy.vision``, e.g. a checkpoint
trained on images) gets the environments' current frames with each call; the task is made to render
them, at the checkpoint's cameras and size, so every caller (evaluation, collection, the CLI) works
unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from recap_core.episode import Episode, stable_episode_id
from recap_core.policy_api import ChunkPolicy
from recap_core.sim.cameras import encode_frames, with_policy_cameras
from recap_core.sim.environment import TaskSpec
from recap_core.sim.pool import FinishedRollout, LocalPool, ProcessPool
from recap_core.sim.supervisor import SupervisorConfig


@dataclass(frozen=True)
class RolloutConfig:
    """How rollouts run. ``execute_steps`` None executes the whole chunk; ``workers`` 0 stays in-process."""

    num_envs: int = 16
    execute_steps: int | None = None
    workers: int = 0

    def __post_init__(self) -> None:
        if self.num_envs < 1:
            raise ValueError(f"RolloutConfig.num_envs must be >= 1, got {self.num_envs}")
        if self.execute_steps is not None and self.execute_steps < 1:
            raise ValueError(f"RolloutConfig.execute_steps must be >= 1, got {self.execute_steps}")


def run_policy(
    policy: ChunkPolicy,
    task: TaskSpec,
    seeds: Sequence[int],
    config: RolloutConfig | None = None,
    supervisor: SupervisorConfig | None = None,
    on_ready: Callable[[], None] | None = None,
) -> Iterator[FinishedRollout]:
    """Raw finished rollouts, in completion order (not seed order).

    ``on_ready`` is called once the environments are built and reset (benchmarks separate start-up from
    steady-state speed with it).
    """
    config = config or RolloutConfig()
    if not seeds:
        return
    vision = getattr(policy, "vision", None)
    cameras: tuple[str, ...] = tuple(vision.cameras) if vision is not None else ()
    if cameras:
        task = with_policy_cameras(task, cameras, vision.image_size, vision.render_quality)
    horizon = int(policy.horizon)
    k = horizon if config.execute_steps is None else config.execute_steps
    if k > horizon:
        raise ValueError(f"execute_steps={k} exceeds the policy's chunk horizon {horizon}")
    if config.workers > 0:
        pool: LocalPool | ProcessPool = ProcessPool(task, seeds, config.num_envs, supervisor, config.workers)
    else:
        pool = LocalPool(task, seeds, config.num_envs, supervisor)
    try:
        observations = pool.observations()
        if on_ready is not None:
            on_ready()
        while len(observations):
            prompts = [task.prompt] * len(observations)
            if cameras:
                frames = pool.frames() or {}
                act = policy.act(observations, prompts, images={c: frames[c] for c in cameras})  # type: ignore[call-arg]
            else:
                act = policy.act(observations, prompts)
            chunks = np.asarray(act, dtype=np.float32)
            if chunks.ndim != 3 or chunks.shape[0] != len(observations) or chunks.shape[1] < k:
                raise ValueError(
                    f"task {task.name}: policy.act returned shape {chunks.shape}, expected "
                    f"({len(observations)}, >= {k}, action_dim)"
                )
            finished, observations = pool.advance(chunks[:, :k])
            yield from finished
    finally:
        pool.close()


def collect_rollouts(
    policy: ChunkPolicy,
    task: TaskSpec,
    seeds: Sequence[int],
    *,
    collected_by: str,
    iteration: int,
    config: RolloutConfig | None = None,
    supervisor: SupervisorConfig | None = None,
) -> Iterator[Episode]:
    """Episodes from running ``policy`` (checkpoint name/sha ``collected_by``) on ``task`` from ``seeds``.

    Episodes where the watching human actually took over are kind "intervention" (the expert's steps
    have ``is_correction`` True); all others, watched or not, are "autonomous". The id depends on task,
    seed, checkpoint and iteration, so re-running the same collection is stored once.
    """
    for rollout in run_policy(policy, task, seeds, config, supervisor):
        yield to_episode(rollout, task, collected_by=collected_by, iteration=iteration)


def to_episode(rollout: FinishedRollout, task: TaskSpec, *, collected_by: str, iteration: int) -> Episode:
    kind = "intervention" if rollout.is_correction.any() else "autonomous"
    return Episode(
        episode_id=stable_episode_id(task.name, "rollout", rollout.seed, collected_by, iteration),
        task=task.name,
        prompt=task.prompt,
        kind=kind,
        success=rollout.success,
        observations=rollout.observations,
        actions=rollout.actions,
        is_correction=rollout.is_correction,
        iteration=iteration,
        collected_by=collected_by,
        robot=f"sim:{task.family}:{task.name}",
        source="recap_core.sim",
        images=encode_frames(rollout.frames),
    )


def require_policy_fits(policy: ChunkPolicy, task: TaskSpec) -> None:
    """Refuse a policy whose observation or action size is not the task's, before any environment pool
    starts (it would otherwise fail in its first forward pass, inside a worker process)."""
    sizes = {name: getattr(policy, name, None) for name in ("obs_dim", "action_dim")}
    if all(size is None for size in sizes.values()):
        return  # a policy that does not say its sizes (any ChunkPolicy may)
    env = task.make_env()
    try:
        wanted = {"obs_dim": env.obs_dim, "action_dim": env.action_dim}
    finally:
        close = getattr(env, "close", None)
        if close is not None:
            close()
    wrong = [
        f"{name} {sizes[name]} (task: {wanted[name]})"
        for name in sizes
        if sizes[name] not in (None, wanted[name])
    ]
    if wrong:
        raise ValueError(f"the policy does not fit task {task.name!r}: {', '.join(wrong)}")
