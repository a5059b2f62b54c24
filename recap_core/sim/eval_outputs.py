"""What `recap evaluate` leaves on disk: eval_info.json (per-episode results and the aggregate, in the
layout LeRobot's evaluation writes) and, on request, MP4 videos of the first episodes."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from recap_core.sim.environment import TaskSpec
from recap_core.sim.evaluation import EvalResult
from recap_core.sim.pool import FinishedRollout
from recap_core.sim.video import render_replay, write_mp4

EVAL_INFO_FILE = "eval_info.json"


def _finite_or_none(value: object) -> object:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_videos(
    task: TaskSpec,
    rollouts: Sequence[FinishedRollout],
    directory: Path,
    count: int,
    size: int,
    camera: str | None,
) -> list[str]:
    """Videos of the first ``count`` episodes (in seed order), played at the robot's real speed."""
    paths = []
    for index, rollout in enumerate(sorted(rollouts, key=lambda r: r.seed)[:count]):
        frames = render_replay(
            task, rollout.seed, rollout.actions, rollout.observations, size=size, camera=camera
        )
        name = f"eval_episode_{index}_seed_{rollout.seed}_{'success' if rollout.success else 'failure'}.mp4"
        paths.append(str(write_mp4(frames, directory / "videos" / name, fps=1.0 / rollout.control_period)))
    return paths


def write_eval_info(
    directory: Path,
    result: EvalResult,
    rollouts: Sequence[FinishedRollout],
    *,
    policy: str,
    beta: float,
    split: str,
    eval_seconds: float,
    video_paths: Sequence[str] = (),
) -> Path:
    """eval_info.json: per-episode success, length, duration and seed; the aggregate; the policy."""
    ordered = sorted(rollouts, key=lambda r: r.seed)
    info = {
        "per_episode": [
            {
                "episode_ix": index,
                "seed": rollout.seed,
                "success": bool(rollout.success),
                "length": len(rollout.actions),
                "duration_s": len(rollout.actions) * rollout.control_period,
            }
            for index, rollout in enumerate(ordered)
        ],
        "aggregated": {
            "pc_success": 100.0 * result.success_rate,
            "eval_s": eval_seconds,
            "eval_ep_s": eval_seconds / max(1, len(ordered)),
            **{key: _finite_or_none(value) for key, value in result.as_dict().items()},
        },
        "policy": policy,
        "beta": beta,
        "split": split,
        "video_paths": list(video_paths),
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / EVAL_INFO_FILE
    partial = directory / f".{EVAL_INFO_FILE}.partial"
    partial.write_text(json.dumps(info, indent=2))
    partial.replace(path)
    return path
