"""One benchmark robot: a process of its own that times its requests (numpy and the client only, so
starting four of them does not import torch four times)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from recap_core.serving.client import PolicyClient

OBS_DIM, ACTION_DIM, HORIZON = 39, 4, 10


def timed_requests(url: str, requests: int, camera: bool, start, results) -> None:
    rng = np.random.default_rng(0)
    observation: dict[str, Any] = {"observation/state": rng.standard_normal(OBS_DIM).astype(np.float32),
                                   "prompt": "push the puck to the goal"}  # fmt: skip
    if camera:
        observation["observation/corner"] = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    with PolicyClient(url) as client:
        client.infer(observation)  # warm-up: the first request pays for lazy initialisation
        start.wait()
        latencies = []
        for _ in range(requests):
            began = time.perf_counter()
            actions = client.infer(observation)["actions"]
            latencies.append(time.perf_counter() - began)
            assert actions.shape == (HORIZON, ACTION_DIM)
    results.put(latencies)
