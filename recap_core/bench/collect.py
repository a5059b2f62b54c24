"""``recap bench collect``: environment steps per second for demo and autonomous collection.

The policy here is a small randomly initialised torch MLP: the benchmark measures the collector's
throughput (batched inference, chunk execution, worker traffic), not policy quality, so trained weights
would change nothing but the episode lengths, which the report states alongside.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence

import numpy as np
import torch

from recap_core.sim.environment import TaskSpec
from recap_core.sim.operator import DemoConfig, collect_demos
from recap_core.sim.rollouts import RolloutConfig, run_policy
from recap_core.sim.supervisor import SupervisorConfig
from recap_core.sim.tasks import get_task, train_seeds


class MLPChunkPolicy:
    """A ChunkPolicy of plain torch: obs -> H x action_dim in [-1, 1]. For benchmarks and tests only."""

    def __init__(self, obs_dim: int, action_dim: int, horizon: int = 10, hidden: int = 128, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self._horizon = horizon
        self.action_dim = action_dim
        self.net = torch.nn.Sequential(
            torch.nn.Linear(obs_dim, hidden),
            torch.nn.GELU(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.GELU(),
            torch.nn.Linear(hidden, horizon * action_dim),
        )
        with torch.no_grad():
            for parameter in self.net.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)

    @property
    def horizon(self) -> int:
        return self._horizon

    @torch.inference_mode()
    def act(self, observations: np.ndarray, prompts: Sequence[str]) -> np.ndarray:
        out = torch.tanh(self.net(torch.from_numpy(np.asarray(observations, dtype=np.float32))))
        return out.reshape(len(observations), self._horizon, self.action_dim).numpy()


def bench_collect(
    task_name: str = "push-v3",
    episodes: int = 32,
    num_envs: int = 16,
    workers: int = 2,
    execute_steps: int = 8,
    horizon: int = 10,
    max_steps: int = 150,
) -> dict[str, object]:
    """Steps/s of autonomous, supervised and demo collection on ``task_name``."""
    from recap_core.sim.tasks import with_max_steps

    torch.set_num_threads(1)
    task = with_max_steps(get_task(task_name), max_steps)
    env = task.make_env()
    policy = MLPChunkPolicy(env.obs_dim, env.action_dim, horizon=horizon)
    seeds = train_seeds(episodes, start=500_000)
    results: dict[str, object] = {
        "task": task.name,
        "episodes": episodes,
        "num_envs": num_envs,
        "workers": workers,
        "horizon": horizon,
        "execute_steps": execute_steps,
        "max_steps": max_steps,
        "torch_threads": torch.get_num_threads(),
    }
    config = RolloutConfig(num_envs=num_envs, execute_steps=execute_steps, workers=workers)
    for label, supervisor in (("autonomous", None), ("supervised", SupervisorConfig(share=1.0))):
        ready: list[float] = []
        start = time.perf_counter()

        def mark_ready(marks: list[float] = ready) -> None:
            marks.append(time.perf_counter())

        rollouts = list(run_policy(policy, task, seeds, config, supervisor, on_ready=mark_ready))
        end = time.perf_counter()
        steps = sum(len(r.actions) for r in rollouts)
        results[f"{label}_steps_per_s"] = round(steps / (end - ready[0]), 1)
        results[f"{label}_steps_per_s_incl_startup"] = round(steps / (end - start), 1)
        results[f"{label}_startup_s"] = round(ready[0] - start, 2)
        results[f"{label}_steps"] = steps
        results[f"{label}_corrections"] = int(sum(r.is_correction.sum() for r in rollouts))
    start = time.perf_counter()
    demos = list(collect_demos(task, seeds, DemoConfig(), workers=workers))
    seconds = time.perf_counter() - start
    steps = sum(d.length for d in demos)
    results["demo_steps_per_s"] = round(steps / seconds, 1)
    results["demo_steps"] = steps
    results["demo_seconds"] = round(seconds, 2)
    results["demo_success_rate"] = round(sum(d.success for d in demos) / len(demos), 3)
    results["render"] = bench_render(task_name)
    return results


RENDER_SETTINGS = {
    # every frame before render qualities, with llvmpipe's own default of one thread per core
    "before": ("presentation", str(os.cpu_count() or 1)),
    "fast": ("fast", "0"),  # recorded cameras now (LP_NUM_THREADS=0: recap_core/sim/__init__.py)
    "presentation": ("presentation", "0"),  # evaluation videos now
}
"""Render settings ``bench_render`` compares: (render quality, LP_NUM_THREADS)."""


def bench_render(task_name: str = "push-v3", episodes: int = 2, max_steps: int = 40) -> dict[str, object]:
    """What recording a camera costs on this machine, per image size and render setting, in one run.

    ``frames_per_s_<size>px_<setting>``: rendering alone, one process per setting (llvmpipe reads its
    thread count once per process), the state of a reset episode, so only the renderer is timed;
    ``before`` is how every camera rendered before render qualities existed. ``demo_steps_per_s_*``:
    demo collection in this process with one camera recorded (simulation, rendering and the PNG encoding
    the store keeps), against none.
    """
    from recap_core.sim.cameras import CameraSpec, with_cameras
    from recap_core.sim.tasks import with_max_steps

    task = with_max_steps(get_task(task_name), max_steps)
    camera = "corner" if task.family == "metaworld" else "top"
    seeds = train_seeds(episodes, start=600_000)
    results: dict[str, object] = {
        "task": task.name,
        "camera": camera,
        "backend": os.environ.get("MUJOCO_GL", "osmesa"),
        "settings": {name: {"quality": q, "LP_NUM_THREADS": lp} for name, (q, lp) in RENDER_SETTINGS.items()},
    }
    for size in (64, 84):
        for name, (quality, threads) in RENDER_SETTINGS.items():
            fps = _frames_per_second_in_a_process(task_name, camera, size, quality, threads)
            results[f"frames_per_s_{size}px_{name}"] = round(fps, 1)
        fast, before = results[f"frames_per_s_{size}px_fast"], results[f"frames_per_s_{size}px_before"]
        results[f"speedup_{size}px"] = round(float(fast) / float(before), 2)  # type: ignore[arg-type]
    results["demo_steps_per_s_no_camera"] = _demo_steps_per_second(task, seeds)
    for quality in ("fast", "presentation"):
        rendering = with_cameras(task, CameraSpec((camera,), 64, (quality,)))
        results[f"demo_steps_per_s_64px_{quality}"] = _demo_steps_per_second(rendering, seeds)
    return results


def _demo_steps_per_second(task: TaskSpec, seeds: Sequence[int]) -> float:
    start = time.perf_counter()
    demos = list(collect_demos(task, seeds, DemoConfig()))
    return round(sum(d.length for d in demos) / (time.perf_counter() - start), 1)


def _frames_per_second_in_a_process(
    task_name: str, camera: str, size: int, quality: str, lp_threads: str
) -> float:
    env = {**os.environ, "LP_NUM_THREADS": lp_threads}
    code = (
        "from recap_core.bench.collect import frames_per_second; "
        f"print(frames_per_second({task_name!r}, {camera!r}, {size}, {quality!r}))"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def frames_per_second(task_name: str, camera: str, size: int, quality: str, seconds: float = 2.0) -> float:
    """Frames rendered per second by one environment of ``task_name`` recording ``camera`` at
    ``quality``, after a warm-up frame (the first one creates the OpenGL context); best of three."""
    from recap_core.sim.cameras import CameraSpec, with_cameras

    env = with_cameras(get_task(task_name), CameraSpec((camera,), size, (quality,))).make_env()
    env.reset(600_000)
    inner = env.env  # type: ignore[attr-defined]
    inner.render()
    best = 0.0
    for _ in range(3):
        frames, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / 3:
            inner.render()
            frames += 1
        best = max(best, frames / elapsed)
    return best
