"""A stand-in external trainer: what lerobot-train or openpi's train script is to the pipeline.

It runs in its own virtual environment (numpy, pyarrow, dagster-pipes: no torch, nothing of this
project), reads the labelled LeRobot v3.0 dataset from disk as LeRobot would (meta/info.json,
meta/tasks.parquet, data/chunk-*/file-*.parquet), keeps the frames whose prompt carries the positive
indicator or none (RECAP's conditioning at beta = 1, by the prompt text), fits a linear action-chunk
policy by gradient descent, reports its loss through Dagster Pipes and writes its own checkpoint format.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from dagster_pipes import open_dagster_pipes

POSITIVE, NEGATIVE = "Advantage: positive", "Advantage: negative"


def read_dataset(root: Path) -> dict:
    info = json.loads((root / "meta" / "info.json").read_text())
    tasks = pq.read_table(root / "meta" / "tasks.parquet").to_pydict()
    prompt_of = dict(zip(tasks["task_index"], tasks["task"], strict=True))
    files = sorted((root / "data").glob("chunk-*/file-*.parquet"))
    table = pa.concat_tables([pq.read_table(f) for f in files])
    table = table.sort_by([("episode_index", "ascending"), ("frame_index", "ascending")])
    state = np.asarray(table.column("observation.state").to_pylist(), dtype=np.float64)
    action = np.asarray(table.column("action").to_pylist(), dtype=np.float64)
    prompts = [prompt_of[i] for i in table.column("task_index").to_pylist()]
    episode = table.column("episode_index").to_numpy()
    return {
        "info": info,
        "state": state,
        "action": action,
        "prompts": prompts,
        "episode": episode,
    }


def chunk_targets(action: np.ndarray, episode: np.ndarray, horizon: int) -> np.ndarray:
    """(N, H * A): each frame's next H actions, the episode's last one repeated past its end."""
    n = len(action)
    last = np.array([np.flatnonzero(episode == e)[-1] for e in episode])
    rows = np.minimum(np.arange(n)[:, None] + np.arange(horizon)[None, :], last[:, None])
    return action[rows].reshape(n, -1)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", required=True, type=Path)
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--settings", type=Path)
    parser.add_argument("--horizon", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--fail-with", type=int, default=0, help="exit with this code after reading")
    args = parser.parse_args()
    with open_dagster_pipes() as pipes:
        data = read_dataset(args.dataset)
        prompts = data["prompts"]
        keep = np.array([not p.endswith(NEGATIVE) for p in prompts])
        positive = int(sum(p.endswith(POSITIVE) for p in prompts))
        print(
            f"read {len(prompts)} frames of {len(set(data['episode'].tolist()))} episodes from {args.dataset}"
        )
        pipes.log.info(f"standin: {keep.sum()} of {len(prompts)} frames kept ({positive} positive prompts)")
        if args.fail_with:
            print("standin: failing on purpose after reading the dataset", file=sys.stderr)
            return args.fail_with
        settings = json.loads(args.settings.read_text()) if args.settings else {}
        state, targets = (
            data["state"][keep],
            chunk_targets(data["action"], data["episode"], args.horizon)[keep],
        )
        mean, std = state.mean(0), state.std(0) + 1e-6
        x = np.hstack([(state - mean) / std, np.ones((len(state), 1))])
        weights = np.zeros((x.shape[1], targets.shape[1]))
        rate = 1.0 / np.linalg.eigvalsh(x.T @ x / len(x)).max()
        for step in range(1, args.steps + 1):
            error = x @ weights - targets
            weights -= rate * x.T @ error / len(x)
            if step % 20 == 0 or step == 1:
                loss = float(np.mean(error**2))
                pipes.report_custom_message({"metrics": {"step": step, "loss": loss}})
                print(f"step {step} loss {loss:.5f}")
        args.output.mkdir(parents=True, exist_ok=True)
        np.savez(args.output / "weights.npz", weights=weights, mean=mean, std=std)
        card = {
            "kind": "standin-linear-chunk-policy",
            "obs_dim": int(state.shape[1]),
            "action_dim": int(data["action"].shape[1]),
            "horizon": args.horizon,
            "frames_read": len(prompts),
            "frames_trained": int(keep.sum()),
            "positive_prompts": positive,
            "seed": args.seed,
            "study": settings.get("study", ""),
        }
        (args.output / "policy.json").write_text(json.dumps(card, indent=2))
        pipes.report_custom_message(
            {"reported": {"frames_read": len(prompts), "frames_trained": int(keep.sum())}}
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
