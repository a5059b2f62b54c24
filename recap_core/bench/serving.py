"""`recap bench serve`: what a robot waits for per action chunk, and what one server delivers.

The server runs in this process (as `recap serve` would, one sampling thread per connection) and every
client in a process of its own (a robot is another machine; here another process, so the clients do not
share the server's interpreter lock). Each client sends single observations back to back, as a robot
does between chunks. Latency is the client's round trip; throughput is chunks (and actions) per second
over all clients. The policy is untrained at the architecture of the presets (hidden 256, depth 3,
H = 10, 10 flow steps), on Meta-World's sizes (39-d state, 4-d action), with or without one 64 px camera:
sampling cost does not depend on how well it was trained.
"""

from __future__ import annotations

import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recap_core.bench.serving_client import ACTION_DIM, HORIZON, OBS_DIM, timed_requests
from recap_core.checkpoints.policy import TrainedPolicy, save_policy
from recap_core.models.flow_policy import FlowMatchingPolicy, FlowPolicyConfig
from recap_core.models.vision import VisionConfig
from recap_core.serving.served_policy import ServedPolicy
from recap_core.serving.server import FixedPolicy, PolicyServer


def benchmark_checkpoint(directory: Path, camera: bool) -> Path:
    config = FlowPolicyConfig(
        obs_dim=OBS_DIM,
        action_dim=ACTION_DIM,
        horizon=HORIZON,
        images=VisionConfig(cameras=("corner",), image_size=64) if camera else VisionConfig(),
    )
    torch.manual_seed(0)
    path = directory / ("camera" if camera else "state")
    save_policy(TrainedPolicy(FlowMatchingPolicy(config, load_pretrained=False), "recap"), path)
    return path


def measure(url: str, clients: int, requests: int, camera: bool) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(clients + 1), context.Queue()
    workers = [
        context.Process(target=timed_requests, args=(url, requests, camera, start, results))
        for _ in range(clients)
    ]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    latencies = np.concatenate([results.get(timeout=600) for _ in workers])
    seconds = time.perf_counter() - began
    for worker in workers:
        worker.join()
    chunks = len(latencies) / seconds
    return {
        "clients": clients,
        "requests": len(latencies),
        "chunks_per_s": round(chunks, 1),
        "actions_per_s": round(chunks * HORIZON, 1),
        "latency_ms_p50": round(float(np.percentile(latencies, 50)) * 1e3, 2),
        "latency_ms_p95": round(float(np.percentile(latencies, 95)) * 1e3, 2),
    }


def run_serving_benchmark(
    requests: int = 200, client_counts: tuple[int, ...] = (1, 4), threads: int = 1
) -> dict[str, Any]:
    torch.set_num_threads(threads)
    report: dict[str, Any] = {"horizon": HORIZON, "obs_dim": OBS_DIM, "action_dim": ACTION_DIM,
                              "torch_threads": threads, "cores": multiprocessing.cpu_count()}  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        for camera in (False, True):
            name = "one_camera_64px" if camera else "state_only"
            served = ServedPolicy.load(benchmark_checkpoint(Path(folder), camera))
            with PolicyServer(FixedPolicy(served), port=0) as server:
                report[name] = [measure(server.url, count, requests, camera) for count in client_counts]
    return report
