"""Benchmark: policy training samples/s on 1 and on N torchrun processes (gloo on CPU, DDP).

The parent builds one store of synthetic state-only episodes, then launches ``torchrun --nproc-per-node
P -m recap_core.bench.distributed`` for each P; every rank trains the flow policy on its own
episodes with the same global batch (B / P per rank) and rank 0 prints the global samples/s. Each rank
uses one torch thread, so P processes use P cores; with ``device`` "auto" on a machine with GPUs each
rank trains on its own GPU (LOCAL_RANK) in bfloat16, so P can be at most the number of GPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def _train(
    uri: str, reader: str, epochs: int, batch: int, budget_mb: int, device: str, precision: str
) -> dict:
    from recap_core.store import EpisodeStore
    from recap_core.store.streaming import StreamingStepReader
    from recap_core.training import PolicyTrainConfig, train_policy
    from recap_core.training.device import resolve_placement
    from recap_core.training.distributed import Distributed
    from recap_core.training.sources import in_memory_data, streaming_data

    torch.set_num_threads(1)
    placement = resolve_placement(device, precision)
    distributed = Distributed.from_environment(placement.device)
    store = EpisodeStore(uri)
    versions = store.versions()
    config = PolicyTrainConfig(epochs=epochs, batch_size=batch, weights="last", val_fraction=0.0)
    started = time.perf_counter()
    if reader == "memory":
        data = in_memory_data(
            store.load_steps(versions=versions), {}, 0.0, 0, distributed.world_size, distributed.rank
        )
    else:
        selection = store.episodes(versions=versions).frame
        source = StreamingStepReader(store, selection, versions, budget_mb * 2**20)
        data = streaming_data(source, None, 0.0, 0, distributed.world_size, distributed.rank)
    _, history = train_policy(data, config=config, method="sft", distributed=distributed, placement=placement)
    return {
        **placement.describe(),
        "processes": distributed.world_size,
        "reader": reader,
        "samples_per_s": history.samples_per_second,
        "gradient_steps": history.gradient_steps,
        "seconds_with_data": time.perf_counter() - started,
    }


def run_training_benchmark(
    frames: int = 100_000,
    processes: tuple[int, ...] = (1, 2),
    reader: str = "memory",
    epochs: int = 1,
    batch: int = 256,
    budget_mb: int = 256,
    root: str | None = None,
    device: str = "auto",
    precision: str = "auto",
) -> dict:
    """Samples/s of policy training with each process count, and the speed-up over one process."""
    from recap_core.bench.streaming import build_store
    from recap_core.training.device import resolve_placement

    placement = resolve_placement(device, precision)  # refuses what this machine cannot do, up front
    if placement.device.type == "cuda" and max(processes) > torch.cuda.device_count():
        raise ValueError(
            f"{max(processes)} processes on {torch.cuda.device_count()} GPU(s): NCCL runs one rank per "
            "GPU; ask for fewer processes or --device cpu"
        )

    tmp = Path(tempfile.mkdtemp(prefix="recap-ddp-bench-")) if root is None else Path(root)
    try:
        uri = tmp / "lance"
        build_store(uri, frames, 39, 4, 0)
        runs = []
        for count in processes:
            command = [
                sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={count}",
                "-m", "recap_core.bench.distributed", "--store", str(uri), "--reader", reader,
                "--epochs", str(epochs), "--batch", str(batch), "--budget-mb", str(budget_mb),
                "--device", device, "--precision", precision,
            ]  # fmt: skip
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            out = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        if root is None:
            shutil.rmtree(tmp, ignore_errors=True)
    base = runs[0]["samples_per_s"]
    return {
        "frames": frames,
        "reader": reader,
        "batch_size_global": batch,
        "epochs": epochs,
        "model": "flow policy (SFT objective), default PolicyTrainConfig network, 1 torch thread per process",
        **placement.describe(),
        "cpu_count": os.cpu_count(),
        "runs": [
            {
                **run,
                "samples_per_s": round(run["samples_per_s"]),
                "speedup": round(run["samples_per_s"] / base, 2),
            }
            for run in runs
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="One rank of the training benchmark (run by torchrun).")
    parser.add_argument("--store", required=True)
    parser.add_argument("--reader", default="memory")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--budget-mb", type=int, default=256)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()
    result = _train(
        args.store, args.reader, args.epochs, args.batch, args.budget_mb, args.device, args.precision
    )
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
