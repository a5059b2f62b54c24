"""Shared builders for the store tests: synthetic episodes with real arrays, and a subprocess ingester."""

from __future__ import annotations

import numpy as np

from recap_core.episode import Episode, stable_episode_id


def make_episode(
    index: int,
    length: int = 12,
    task: str = "reach-v3",
    kind: str = "demo",
    obs_dim: int = 39,
    action_dim: int = 4,
    iteration: int = 0,
    seed: int = 0,
    success: bool | None = None,
) -> Episode:
    """A deterministic episode: same arguments, same content (so re-ingest is a true duplicate)."""
    rng = np.random.default_rng([seed, index])
    return Episode(
        episode_id=stable_episode_id("test", task, seed, index),
        task=task,
        prompt=f"do {task}",
        kind=kind,
        success=bool(index % 2 == 0) if success is None else success,
        observations=rng.normal(size=(length, obs_dim)).astype(np.float32),
        actions=rng.uniform(-1, 1, size=(length, action_dim)).astype(np.float32),
        is_correction=(np.arange(length) % 5 == 0) if kind == "intervention" else None,
        iteration=iteration,
    )


def ingest_in_process(uri: str, first: int, count: int, per_batch: int, seed: int) -> list[str]:
    """Run in a separate process: ingest ``count`` episodes in several batches; returns ids added."""
    from recap_core.store import EpisodeStore

    store = EpisodeStore(uri)
    added: list[str] = []
    for start in range(first, first + count, per_batch):
        batch = [
            make_episode(i, length=8 + i % 5, seed=seed)
            for i in range(start, min(start + per_batch, first + count))
        ]
        added += store.add_episodes(batch).added
    return added


def metaworld_episode(seed: int, steps: int = 40, task: str = "reach-v3") -> Episode:
    """A real Meta-World rollout of the scripted expert (39-d observation, 4-d action)."""
    import warnings

    from metaworld.env_dict import ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE
    from metaworld.policies import ENV_POLICY_MAP

    warnings.filterwarnings("ignore")
    env = ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE[f"{task}-goal-observable"](seed=seed)
    expert = ENV_POLICY_MAP[task]()
    obs, _ = env.reset()
    observations, actions, success = [], [], False
    for _ in range(steps):
        action = np.clip(expert.get_action(obs), -1, 1).astype(np.float32)
        observations.append(np.asarray(obs, dtype=np.float32))
        actions.append(action)
        obs, _reward, _terminated, _truncated, info = env.step(action)
        success = success or bool(info.get("success", 0.0))
    env.close()
    return Episode(
        episode_id=stable_episode_id("metaworld-test", task, seed, steps),
        task=task,
        prompt="reach the goal",
        kind="demo",
        success=success,
        observations=np.stack(observations),
        actions=np.stack(actions),
        collected_by="scripted-expert",
        robot="metaworld-sawyer",
        source="metaworld",
    )


def frame_png(i: int) -> bytes:
    """A small PNG that is different for every i (a LeRobot image feature's frame)."""
    import io

    from PIL import Image

    pixels = np.full((4, 4, 3), i % 256, dtype=np.uint8)
    pixels[0, 0] = (i // 256) % 256, 7, 11
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def write_lerobot_dataset(
    root,
    lengths: list[int],
    version: str = "v3.0",
    obs_dim: int = 6,
    action_dim: int = 2,
    rows_per_file: int = 25,
    tasks: tuple[str, ...] = ("pick up the cube", "open the drawer"),
    with_images: bool = False,
    seed: int = 0,
    video_without_files: bool = False,
):
    """Write a small LeRobot dataset (v3.0 layout, or v2.1) the way LeRobot lays it out on disk.

    Episode e has task e % len(tasks); next.success is True on the last frame of even episodes;
    is_intervention marks every third frame. v3.0 data files hold ``rows_per_file`` rows, so episodes
    cross file boundaries. ``video_without_files`` declares a video feature whose mp4 files are absent
    (a copy fetched without its videos). Returns the per-episode frames written, for comparison.
    """
    import json
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq

    root = Path(root)
    (root / "meta").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    frames = []
    for e, n in enumerate(lengths):
        frames.append(
            {
                "observation.state": rng.normal(size=(n, obs_dim)).astype(np.float32),
                "action": rng.normal(size=(n, action_dim)).astype(np.float32),
                "episode_index": np.full(n, e, np.int64),
                "frame_index": np.arange(n, dtype=np.int64),
                "timestamp": (np.arange(n) / 10).astype(np.float32),
                "task_index": np.full(n, e % len(tasks), np.int64),
                "next.success": np.arange(n) == n - 1 if e % 2 == 0 else np.zeros(n, bool),
                "is_intervention": np.arange(n) % 3 == 0,
            }
        )
    features = {
        "observation.state": {"dtype": "float32", "shape": [obs_dim], "names": None},
        "action": {"dtype": "float32", "shape": [action_dim], "names": None},
        "episode_index": {"dtype": "int64", "shape": [1]},
        "frame_index": {"dtype": "int64", "shape": [1]},
        "timestamp": {"dtype": "float32", "shape": [1]},
        "task_index": {"dtype": "int64", "shape": [1]},
        "next.success": {"dtype": "bool", "shape": [1]},
        "is_intervention": {"dtype": "bool", "shape": [1]},
    }
    if video_without_files:
        features["observation.images.front"] = {"dtype": "video", "shape": [64, 64, 3]}
    if with_images:
        features["observation.images.wrist"] = {"dtype": "image", "shape": [8, 8, 3]}
    info = {
        "codebase_version": version,
        "robot_type": "so100",
        "fps": 10,
        "total_episodes": len(lengths),
        "total_frames": int(sum(lengths)),
        "features": features,
    }
    (root / "meta" / "info.json").write_text(json.dumps(info))

    def table(parts: dict) -> pa.Table:
        columns = {}
        for name, values in parts.items():
            if values.ndim == 2:
                columns[name] = pa.FixedSizeListArray.from_arrays(
                    pa.array(values.reshape(-1)), values.shape[1]
                )
            else:
                columns[name] = pa.array(values)
        if with_images:
            n = len(parts["frame_index"])
            columns["observation.images.wrist"] = pa.array(
                [{"bytes": frame_png(i), "path": None} for i in range(n)],
                type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]),
            )
        return pa.table(columns)

    all_rows = table({k: np.concatenate([f[k] for f in frames]) for k in frames[0]})
    starts = np.concatenate([[0], np.cumsum(lengths)])
    if version.startswith("v3"):
        (root / "data" / "chunk-000").mkdir(parents=True, exist_ok=True)
        for i, offset in enumerate(range(0, all_rows.num_rows, rows_per_file)):
            pq.write_table(
                all_rows.slice(offset, rows_per_file), root / "data" / "chunk-000" / f"file-{i:03d}.parquet"
            )
        pq.write_table(
            pa.table({"task_index": list(range(len(tasks))), "__index_level_0__": list(tasks)}),
            root / "meta" / "tasks.parquet",
        )
        (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True, exist_ok=True)
        pq.write_table(
            pa.table(
                {
                    "episode_index": list(range(len(lengths))),
                    "tasks": [[tasks[e % len(tasks)]] for e in range(len(lengths))],
                    "length": lengths,
                    "dataset_from_index": starts[:-1].tolist(),
                    "dataset_to_index": starts[1:].tolist(),
                }
            ),
            root / "meta" / "episodes" / "chunk-000" / "file-000.parquet",
        )
    else:
        (root / "data" / "chunk-000").mkdir(parents=True, exist_ok=True)
        for e in range(len(lengths)):
            part = all_rows.slice(int(starts[e]), lengths[e])
            pq.write_table(part, root / "data" / "chunk-000" / f"episode_{e:06d}.parquet")
        (root / "meta" / "tasks.jsonl").write_text(
            "\n".join(json.dumps({"task_index": i, "task": t}) for i, t in enumerate(tasks))
        )
        (root / "meta" / "episodes.jsonl").write_text(
            "\n".join(
                json.dumps({"episode_index": e, "tasks": [tasks[e % len(tasks)]], "length": n})
                for e, n in enumerate(lengths)
            )
        )
    return frames
