"""Getting experience into the store: operator demonstrations, and (per iteration) the policy's rollouts.

Seeds fix every initial state, so collecting the same iteration twice yields the same episode ids and
the store skips them: re-materialising a collection stage never duplicates data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pyarrow as pa

from recap_core.checkpoints.labels import policy_label
from recap_core.episode import stable_episode_id
from recap_core.loop.context import RunContext
from recap_core.loop.fleet import ingest_pending
from recap_core.loop.labels import partition_filter
from recap_core.loop.policies import opened_policy
from recap_core.loop.seeding import run_seeds
from recap_core.sim.cameras import with_cameras
from recap_core.sim.operator import collect_demos
from recap_core.sim.rollouts import RolloutConfig, collect_rollouts
from recap_core.sim.supervisor import SupervisorConfig
from recap_core.sim.tasks import get_task, with_max_steps
from recap_core.store import EpisodeStore
from schemas.derived import ROLLOUT_SEEDS, ROLLOUT_SEEDS_ARROW_SCHEMA, ROLLOUT_SEEDS_KEY


@dataclass
class CollectionResult:
    """What a collection stage added to the store, per task and kind."""

    added: int
    skipped: int
    versions: dict[str, int]
    per_task: dict[str, dict[str, float]] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    content_digest: str = ""  # of the episodes the stage is responsible for, whoever stored them


def collect_demonstrations(ctx: RunContext) -> CollectionResult:
    """``demos_per_task`` operator demonstrations of every task (iteration 0), ingested per task."""
    store, settings = ctx.store, ctx.settings
    added = skipped = 0
    versions: dict[str, int] = store.versions()
    per_task: dict[str, dict[str, float]] = {}
    for task_name in settings.tasks:
        task = with_cameras(with_max_steps(get_task(task_name), settings.max_steps), settings.camera_spec())
        seeds = run_seeds(settings).demonstrations()
        episodes = list(collect_demos(task, seeds, settings.demo, workers=settings.workers))
        result = store.add_episodes(episodes)
        added += len(result.added)
        skipped += len(result.skipped)
        versions = result.versions
        per_task[task_name] = {
            "episodes": len(episodes),
            "success_rate": sum(e.success for e in episodes) / len(episodes),
            "mean_length": sum(e.length for e in episodes) / len(episodes),
        }
    digests = sorted(store.episodes(task=t, kind="demo").content_digest() for t in settings.tasks)
    digest = hashlib.sha256("".join(digests).encode()).hexdigest()
    return CollectionResult(added, skipped, versions, per_task, content_digest=digest)


def collected_seeds(store: EpisodeStore, task: str, iteration: int) -> set[int]:
    """Seeds whose iteration-k rollout is already stored, whichever checkpoint of pi^{k-1} collected it.

    Iteration k's experience is collected once: re-training pi^{k-1} later (its checkpoint sha changes
    with every save) must not add a second batch of rollouts from the same initial states.
    """
    if ROLLOUT_SEEDS not in store.table_names():
        return set()
    rows = store.read_derived(ROLLOUT_SEEDS, filter=partition_filter(task, iteration))
    stored = set(store.episodes(task=task, iteration=iteration).frame["episode_id"].to_list())
    return {int(r["seed"]) for r in rows.iter_rows(named=True) if r["episode_id"] in stored}


def record_collected_seeds(
    store: EpisodeStore, task: str, iteration: int, seeds: list[int], episodes: list, collected_by: str
) -> None:
    """Which initial state each rollout came from, and which policy drove it (after the episodes landed)."""
    by_id = {stable_episode_id(task, "rollout", s, collected_by, iteration): s for s in seeds}
    rows = [(by_id[e.episode_id], e.episode_id) for e in episodes if e.episode_id in by_id]
    table = pa.table(
        {
            "task": pa.array([task] * len(rows), pa.string()),
            "iteration": pa.array([iteration] * len(rows), pa.int32()),
            "seed": pa.array([seed for seed, _ in rows], pa.int64()),
            "episode_id": pa.array([episode_id for _, episode_id in rows], pa.string()),
            "collected_by": pa.array([collected_by] * len(rows), pa.string()),
        },
        schema=ROLLOUT_SEEDS_ARROW_SCHEMA,
    )
    store.write_derived(ROLLOUT_SEEDS, table, ROLLOUT_SEEDS_KEY)


def collect_iteration_experience(
    ctx: RunContext, task_name: str, iteration: int, drop_folder: str | None = None
) -> CollectionResult:
    """Iteration k's new data: the fleet's dropped datasets, and on the simulated robot pi^{k-1}'s
    rollouts (a share watched by the supervisor, whose takeovers are corrections), stored as iteration k.

    Seeds whose episode is already stored are not collected again, so a re-run adds nothing.
    """
    store, settings = ctx.store, ctx.settings
    seeding = run_seeds(settings)
    fleet = ingest_pending(store, drop_folder, task_name, iteration) if drop_folder else {}
    extra: dict = {"fleet_datasets": len(fleet), "fleet_episodes": sum(fleet.values())}
    try:
        task = with_cameras(with_max_steps(get_task(task_name), settings.max_steps), settings.camera_spec())
    except KeyError:
        task = None  # a fleet-only task: no simulator to collect with
    added = sum(fleet.values())
    if iteration == 0 and not added and store.episodes(task=task_name).frame.is_empty():
        raise FileNotFoundError(
            f"iteration 0 of {task_name!r} learns from the task's demonstrations and the store has none: "
            "materialise the pretraining job (its demonstrations asset) first"
        )
    skipped = 0
    per_kind: dict[str, dict[str, float]] = {}
    if iteration >= 1 and task is not None:
        policy_dir = ctx.checkpoints.data_collecting_policy(task_name, iteration)
        collected_by = policy_label(policy_dir)
        seeds = seeding.rollouts(iteration)
        done = collected_seeds(store, task_name, iteration)
        todo = [s for s in seeds if s not in done]
        skipped = len(seeds) - len(todo)
        sampling = seeding.rollout_sampling(iteration)
        episodes = []
        if todo:  # (an external policy's server is started only when there is something to collect)
            with opened_policy(settings, policy_dir, task_name, settings.beta, sampling) as policy:
                episodes = list(
                    collect_rollouts(
                        policy,
                        task,
                        todo,
                        collected_by=collected_by,
                        iteration=iteration,
                        config=RolloutConfig(workers=settings.workers),
                        supervisor=SupervisorConfig(
                            share=settings.intervention_share, seed=seeding.supervisor
                        ),
                    )
                )
        if episodes:
            result = store.add_episodes(episodes)
            added += len(result.added)
            skipped += len(result.skipped)
            record_collected_seeds(store, task_name, iteration, todo, episodes, collected_by)
        for kind in ("autonomous", "intervention"):
            mine = [e for e in episodes if e.kind == kind]
            if mine:
                per_kind[kind] = {
                    "episodes": len(mine),
                    "success_rate": sum(e.success for e in mine) / len(mine),
                    "correction_steps": int(sum(e.is_correction.sum() for e in mine)),
                }
        extra["collected_by"] = collected_by
        extra["seeds_already_collected"] = len(done)
    digest = store.episodes(task=task_name, iteration=iteration).content_digest()
    return CollectionResult(added, skipped, store.versions(), per_kind, extra, content_digest=digest)
